// The checkout page: PortOne's browser SDK opens its payment window; on success the guest goes to
// the return page, which has the server re-query PortOne (the browser's word counts for nothing).
(function () {
  "use strict";
  const button = document.getElementById("portone-pay");
  const error = document.getElementById("portone-error");
  if (!button) return;
  function fail(message, fallback) {
    const standard = document.getElementById(fallback || "portone-failed-text").textContent;
    error.textContent = message || standard;
    error.hidden = false;
    button.disabled = false;
  }
  if (!window.PortOne || typeof window.PortOne.requestPayment !== "function") {
    fail(null, "portone-missing-text"); // the CDN unreachable, or blocked
    return;
  }
  button.hidden = false;
  button.addEventListener("click", async function () {
    const data = button.dataset;
    button.disabled = true;
    error.hidden = true;
    try {
      const response = await window.PortOne.requestPayment({
        storeId: data.storeId,
        channelKey: data.channelKey,
        paymentId: data.paymentId,
        orderName: data.orderName,
        totalAmount: Number(data.amount),
        currency: "CURRENCY_KRW",
        payMethod: "CARD",
        customer: { fullName: data.customerName, email: data.customerEmail },
        // Phones are sent there by redirect (with paymentId, and code on failure).
        redirectUrl: data.returnUrl,
      });
      if (response === undefined) return; // a redirect is under way
      if (response.code !== undefined) {
        fail(response.message);
        return;
      }
      window.location.assign(data.returnUrl);
    } catch (exception) {
      fail(exception && exception.message);
    }
  });
})();
