// A launch form generated from a definition's parameter schema (JSON
// Schema draft 2020-12, the subset pkg/defschema writes). Plain data, no
// DOM: fieldsOf reads the schema into fields, initialValues fills in the
// defaults, collect turns what was typed into the run's properties or
// into one message per field that is wrong.
//
// Each field is shown as:
//   string, number, integer     a text input (numbers checked here)
//   boolean                     a checkbox
//   enum (enum, anyOf of const) a select of the allowed values
//   object with properties      a fieldset of its fields
//   array of scalars            a textarea, one value per line
//   string | number | …         a text input, read as JSON when it parses, else a string
//   anything else              a JSON textarea
// Values are kept as the text of the inputs, keyed by the field's path
// ("image.repo"); a checkbox's is "true" or "false", a select's the index
// of its option ("" for none).

import type { JSONSchema } from "../api/types";

type Scalar = "string" | "number" | "integer" | "boolean";

interface Common {
  name: string;
  /** The field's path from the parameter's root, dot-joined; "" is the whole parameter. */
  path: string;
  description: string;
  required: boolean;
  hasDefault: boolean;
  default: unknown;
  schema: JSONSchema;
}

export type Field = Common &
  (
    | { kind: Scalar }
    | { kind: "enum"; options: unknown[] }
    | { kind: "object"; fields: Field[] }
    | { kind: "lines"; item: Scalar }
    | { kind: "scalar" }
    | { kind: "json" }
  );

export type Values = Record<string, string>;

const scalars: string[] = ["string", "number", "integer", "boolean"];

/** The form of a parameter schema; none for a definition without parameter. */
export function fieldsOf(schema: JSONSchema | null | undefined): Field[] {
  if (!schema) return [];
  if (schema.properties && (schema.type === "object" || schema.type === undefined)) {
    return propsOf(schema, "");
  }
  return [field("properties", "", schema, true)];
}

function propsOf(s: JSONSchema, prefix: string): Field[] {
  const req = new Set(s.required ?? []);
  return Object.entries(s.properties ?? {}).map(([name, sub]) =>
    field(name, prefix ? `${prefix}.${name}` : name, sub, req.has(name)),
  );
}

function field(name: string, path: string, s: JSONSchema, required: boolean): Field {
  const c: Common = {
    name,
    path,
    description: s.description ?? "",
    required,
    hasDefault: s.default !== undefined,
    default: s.default,
    schema: s,
  };
  const options = enumOf(s);
  if (options) return { ...c, kind: "enum", options };
  if (s.type && scalars.includes(s.type)) return { ...c, kind: s.type as Scalar };
  if (s.type === "object" && s.properties && Object.keys(s.properties).length > 0) {
    return { ...c, kind: "object", fields: propsOf(s, path) };
  }
  if (s.type === "array" && s.items?.type && scalars.includes(s.items.type) && !enumOf(s.items)) {
    return { ...c, kind: "lines", item: s.items.type as Scalar };
  }
  const alts = s.anyOf ?? s.oneOf;
  if (!s.type && alts && alts.length > 0 && alts.every((a) => a.type && scalars.includes(a.type) && !a.properties)) {
    return { ...c, kind: "scalar" };
  }
  return { ...c, kind: "json" };
}

// The allowed values of an enum: `enum`, or anyOf/oneOf whose every
// alternative is a const.
function enumOf(s: JSONSchema): unknown[] | undefined {
  if (s.enum && s.enum.length > 0) return s.enum;
  const alts = s.anyOf ?? s.oneOf;
  if (alts && alts.length > 0 && alts.every((a) => a.const !== undefined)) return alts.map((a) => a.const);
  return undefined;
}

/** The inputs' text for the fields' defaults (empty where there is none). */
export function initialValues(fields: Field[]): Values {
  const out: Values = {};
  const walk = (fs: Field[]) => {
    for (const f of fs) {
      if (f.kind === "object") {
        walk(f.fields);
        continue;
      }
      out[f.path] = textOf(f);
    }
  };
  walk(fields);
  return out;
}

function textOf(f: Field): string {
  if (f.kind === "boolean") return f.default === true ? "true" : "false";
  if (!f.hasDefault) return "";
  const d = f.default;
  switch (f.kind) {
    case "enum": {
      const i = f.options.findIndex((o) => JSON.stringify(o) === JSON.stringify(d));
      return i < 0 ? "" : String(i);
    }
    case "string":
    case "number":
    case "integer":
      return String(d);
    case "scalar":
      return typeof d === "string" ? d : JSON.stringify(d);
    case "lines":
      return Array.isArray(d) ? d.map((x) => (typeof x === "string" ? x : JSON.stringify(x))).join("\n") : "";
    default:
      return JSON.stringify(d, null, 2);
  }
}

/** What collect returns: the properties, or the messages by field path (then properties is partial). */
export interface Collected {
  properties: Record<string, unknown>;
  errors: Record<string, string>;
}

/**
 * The run's properties from the inputs' text. An empty optional field is
 * left out (the definition's default applies), and so is an optional
 * object none of whose fields was changed from its initial text.
 */
export function collect(fields: Field[], values: Values): Collected {
  const errors: Record<string, string> = {};
  const initial = initialValues(fields);
  const root = fields.length === 1 && fields[0].path === "" ? fields[0] : undefined;
  if (root) {
    const v = valueOf(root, values[""] ?? "", errors);
    const props = v.set && typeof v.value === "object" && v.value !== null && !Array.isArray(v.value) ? v.value : {};
    if (v.set && props !== v.value) errors[""] = "the properties must be a JSON object";
    return { properties: props as Record<string, unknown>, errors };
  }
  return { properties: objectOf(fields, values, initial, errors), errors };
}

function objectOf(fields: Field[], values: Values, initial: Values, errors: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of fields) {
    if (f.kind === "object") {
      if (!f.required && !changed(f.fields, values, initial)) continue;
      out[f.name] = objectOf(f.fields, values, initial, errors);
      continue;
    }
    const v = valueOf(f, values[f.path] ?? "", errors);
    if (v.set) out[f.name] = v.value;
  }
  return out;
}

function changed(fields: Field[], values: Values, initial: Values): boolean {
  return fields.some((f) => (f.kind === "object" ? changed(f.fields, values, initial) : (values[f.path] ?? "") !== (initial[f.path] ?? "")));
}

type Got = { set: true; value: unknown } | { set: false };

function valueOf(f: Field, text: string, errors: Record<string, string>): Got {
  const fail = (msg: string): Got => {
    errors[f.path] = msg;
    return { set: false };
  };
  const empty = (): Got => (f.required ? fail("required") : { set: false });
  switch (f.kind) {
    case "boolean":
      if (text === "true") return { set: true, value: true };
      return f.required || f.hasDefault ? { set: true, value: false } : { set: false };
    case "enum": {
      if (text === "") return empty();
      const i = Number(text);
      return Number.isInteger(i) && i >= 0 && i < f.options.length ? { set: true, value: f.options[i] } : fail("choose one of the values");
    }
    case "string": {
      if (text === "") return empty();
      const msg = checkString(f.schema, text);
      return msg ? fail(msg) : { set: true, value: text };
    }
    case "number":
    case "integer": {
      if (text.trim() === "") return empty();
      const r = scalarOf(f.kind, text.trim(), f.schema);
      return typeof r === "string" ? fail(r) : { set: true, value: r.value };
    }
    case "scalar": {
      if (text.trim() === "") return empty();
      return { set: true, value: jsonOrString(text) };
    }
    case "lines": {
      const lines = text.split("\n").map((l) => l.trim()).filter((l) => l !== "");
      if (lines.length === 0) return empty();
      const out: unknown[] = [];
      for (const [i, l] of lines.entries()) {
        const r = scalarOf(f.item, l, f.schema.items ?? {});
        if (typeof r === "string") return fail(`line ${i + 1}: ${r}`);
        out.push(r.value);
      }
      return { set: true, value: out };
    }
    case "json": {
      if (text.trim() === "") return empty();
      try {
        return { set: true, value: JSON.parse(text) };
      } catch (e) {
        return fail(`not JSON: ${(e as Error).message}`);
      }
    }
    case "object":
      return { set: false };
  }
}

// A scalar from one line of text, or the message why it is not one.
function scalarOf(kind: Scalar, text: string, s: JSONSchema): { value: unknown } | string {
  switch (kind) {
    case "string": {
      const msg = checkString(s, text);
      return msg || { value: text };
    }
    case "boolean":
      if (text === "true" || text === "false") return { value: text === "true" };
      return `"${text}" is not true or false`;
    case "number":
    case "integer": {
      const n = Number(text);
      if (!Number.isFinite(n) || !/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) return `"${text}" is not a number`;
      if (kind === "integer" && !Number.isInteger(n)) return `"${text}" is not a whole number`;
      if (s.minimum !== undefined && n < s.minimum) return `must be at least ${s.minimum}`;
      if (s.maximum !== undefined && n > s.maximum) return `must be at most ${s.maximum}`;
      if (s.exclusiveMinimum !== undefined && n <= s.exclusiveMinimum) return `must be more than ${s.exclusiveMinimum}`;
      if (s.exclusiveMaximum !== undefined && n >= s.exclusiveMaximum) return `must be less than ${s.exclusiveMaximum}`;
      return { value: n };
    }
  }
}

function checkString(s: JSONSchema, text: string): string {
  if (s.minLength !== undefined && text.length < s.minLength) return `must be at least ${s.minLength} characters`;
  if (s.maxLength !== undefined && text.length > s.maxLength) return `must be at most ${s.maxLength} characters`;
  if (s.pattern) {
    let re: RegExp | undefined;
    try {
      re = new RegExp(s.pattern, "u");
    } catch {
      re = undefined; // a pattern JavaScript cannot read is left to the server
    }
    if (re && !re.test(text)) return `must match ${s.pattern}`;
  }
  return "";
}

/** A typed value: JSON when it parses ("3", "true", "{…}"), else the text as a string. */
export function jsonOrString(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** A short name of a field's type for its label ("integer", "list of string", "JSON"). */
export function typeLabel(f: Field): string {
  switch (f.kind) {
    case "lines":
      return `list of ${f.item}, one per line`;
    case "scalar":
      return (f.schema.anyOf ?? f.schema.oneOf ?? []).map((a) => a.type).join(" or ");
    case "json":
      return "JSON";
    case "enum":
      return "one of";
    default:
      return f.kind;
  }
}
