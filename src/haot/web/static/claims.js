// The coupon events page: countdowns to each event's opening, and each pending claim's outcome as
// it arrives over the API's server-sent events (authenticated by the session cookie).
(function () {
  "use strict";

  // Counted from the page's own clock: the seconds left came from the server's.
  const loaded = performance.now();
  function tick() {
    const elapsed = (performance.now() - loaded) / 1000;
    document.querySelectorAll("[data-countdown]").forEach(function (countdown) {
      const left = Math.max(0, Math.ceil(Number(countdown.dataset.seconds) - elapsed));
      const clock = countdown.querySelector(".clock");
      const pad = function (n) { return String(n).padStart(2, "0"); };
      clock.textContent =
        Math.floor(left / 3600) + ":" + pad(Math.floor((left % 3600) / 60)) + ":" + pad(left % 60);
      if (left === 0) {
        countdown.querySelector(".open-now").hidden = false;
        countdown.querySelector(".until").hidden = true;
        delete countdown.dataset.countdown;
      }
    });
  }
  if (document.querySelector("[data-countdown]")) {
    tick();
    setInterval(tick, 1000);
  }

  const PENDING = '[data-testid="claim-status"][data-status="PENDING"]';
  let stream = null;
  function refresh(status) {
    const path = "/coupon-claims/" + encodeURIComponent(status.dataset.claimId);
    window.htmx.ajax("GET", path, { target: status, swap: "outerHTML" });
  }
  function follow() {
    const pending = document.querySelectorAll(PENDING);
    if (!pending.length) {
      if (stream) stream.close();
      stream = null;
      return;
    }
    if (stream || !window.EventSource) return;
    stream = new EventSource("/api/v1/coupon-claims/stream");
    // An outcome issued before the stream opened is not sent on it: ask once it is open.
    stream.addEventListener("open", function () {
      document.querySelectorAll(PENDING).forEach(refresh);
    });
    stream.addEventListener("claim", function (message) {
      const outcome = JSON.parse(message.data);
      document.querySelectorAll(PENDING).forEach(function (status) {
        if (status.dataset.claimId === outcome.claim_id) refresh(status);
      });
    });
    stream.addEventListener("error", function () {
      if (stream.readyState !== EventSource.CLOSED) return; // the browser reconnects by itself
      // Refused (too many streams, signed out): ask for the outcome now and then instead.
      stream = null;
      document.querySelectorAll(PENDING).forEach(refresh);
      setTimeout(follow, 2000);
    });
  }
  document.addEventListener("htmx:load", follow); // a claim's answer was swapped in
  follow();
})();
