#!/usr/bin/env node
// LogQL expressions parsed with Grafana's own LogQL grammar (npm @grafana/lezer-logql, the parser
// of Grafana's Loki query editor), and what each names.
//
//   node tools/node/logql.cjs < expressions.json
//
// stdin: a JSON array of LogQL strings (Grafana's variables already replaced by values).
// stdout: a JSON array, one object per expression, in order:
//   errors        [{from, to, line, column, near}]: lezer's error nodes (it recovers from a syntax
//                 error by inserting one), positions 0-based offsets and 1-based line/column
//   kind          "metric" or "log": what the whole expression is
//   selectors     [{name, op, value}] of every stream selector's matchers {name="value", ...}
//   line_filters  [{op, value}] of every line filter (|= "text", != "text", |~ "re", !~ "re")
//   parsers       json, logfmt, regexp, pattern, unpack, in the order of the pipeline
//   filters       [{name, op, value}] of every label filter after a parser (value: the
//                 string's or number's text, quotes removed)
//   unwrapped     the labels `| unwrap` turns into sample values
//   grouping      the labels of every by (...) / without (...)
//   formats       the text of every line_format / label_format template
// Exit status: 0 when every expression parsed, 1 when one did not, 2 on bad input.
"use strict";

const { parser } = require("@grafana/lezer-logql");

function lineAndColumn(text, offset) {
  const before = text.slice(0, offset).split("\n");
  return { line: before.length, column: before[before.length - 1].length + 1 };
}

function unquote(text) {
  if (text.startsWith('"') || text.startsWith("`")) {
    try {
      return text.startsWith('"') ? JSON.parse(text) : text.slice(1, -1);
    } catch {
      return text.slice(1, -1);
    }
  }
  return text;
}

function child(node, ...names) {
  for (let c = node.firstChild; c; c = c.nextSibling) {
    if (names.includes(c.name)) return c;
  }
  return null;
}

function inside(node, name) {
  for (let p = node.parent; p; p = p.parent) {
    if (p.name === name) return true;
  }
  return false;
}

function analyse(expr) {
  const tree = parser.parse(expr);
  const text = (node) => expr.slice(node.from, node.to);
  const found = {
    errors: [],
    kind: null,
    selectors: [],
    line_filters: [],
    parsers: [],
    filters: [],
    unwrapped: [],
    grouping: [],
    formats: [],
  };
  const top = tree.topNode.firstChild; // LogQL > Expr
  const body = top && top.firstChild;
  found.kind = body ? { MetricExpr: "metric", LogExpr: "log" }[body.name] || body.name : null;

  tree.iterate({
    enter(ref) {
      const node = ref.node;
      if (ref.type.isError) {
        found.errors.push({
          from: ref.from,
          to: ref.to,
          ...lineAndColumn(expr, ref.from),
          near: expr.slice(Math.max(0, ref.from - 15), ref.to + 15),
        });
        return;
      }
      switch (ref.name) {
        case "Matcher": {
          const name = child(node, "Identifier");
          const op = child(node, "Eq", "Neq", "Re", "Nre");
          const value = child(node, "String");
          if (!name) return;
          const matcher = {
            name: text(name),
            op: op ? text(op) : null,
            value: value ? unquote(text(value)) : null,
          };
          (inside(node, "Selector") ? found.selectors : found.filters).push(matcher);
          return;
        }
        case "LineFilter": {
          const op = child(node, "Filter");
          const value = child(node, "String");
          if (op && value) found.line_filters.push({ op: text(op), value: unquote(text(value)) });
          return;
        }
        case "NumberFilter":
        case "DurationFilter":
        case "BytesFilter": {
          const name = child(node, "Identifier");
          const op = child(node, "Gtr", "Gte", "Lss", "Lte", "Neq", "Eql", "Eq");
          const value = child(node, "Number", "LiteralExpr", "Duration", "Bytes");
          if (name) {
            found.filters.push({
              name: text(name),
              op: op ? text(op) : null,
              value: value ? text(value) : null,
            });
          }
          return;
        }
        case "LabelParser":
        case "JsonExpressionParser":
        case "LogfmtParser":
        case "LogfmtExpressionParser":
          found.parsers.push(text(node).trim().split(/\s+/)[0]);
          return;
        case "UnwrapExpr": {
          const name = child(node, "Identifier");
          if (name) found.unwrapped.push(text(name));
          return;
        }
        case "Grouping":
          for (const c of node.getChildren("Labels")) collectIdentifiers(c, found.grouping, text);
          return;
        case "LineFormatExpr":
        case "LabelFormatExpr": {
          for (let c = node.firstChild; c; c = c.nextSibling) {
            if (c.name === "String") found.formats.push(unquote(text(c)));
          }
          return;
        }
        default:
      }
    },
  });
  return found;
}

function collectIdentifiers(node, into, text) {
  if (node.name === "Identifier") into.push(text(node));
  for (let c = node.firstChild; c; c = c.nextSibling) collectIdentifiers(c, into, text);
}

function main() {
  let input;
  try {
    input = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
  } catch (error) {
    process.stderr.write(`stdin is not JSON: ${error.message}\n`);
    return 2;
  }
  if (!Array.isArray(input) || !input.every((e) => typeof e === "string")) {
    process.stderr.write("stdin must be a JSON array of strings\n");
    return 2;
  }
  const results = input.map(analyse);
  process.stdout.write(JSON.stringify(results, null, 1) + "\n");
  return results.every((r) => r.errors.length === 0) ? 0 : 1;
}

process.exitCode = main();
