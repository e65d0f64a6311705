import { describe, expect, it } from "vitest";
import type { JSONSchema } from "../api/types";
import { collect, fieldsOf, initialValues, jsonOrString, type Values } from "./schemaform";

// A schema as pkg/defschema writes it for the parameter of its own test
// (pkg/eval/parameter_test.go): defaults, an enum both ways, a disjunction
// of types, an open struct, a map, a list of structs, a closed nested struct.
const schema: JSONSchema = {
  $schema: "https://json-schema.org/draft/2020-12/schema",
  type: "object",
  required: ["name", "target", "image"],
  properties: {
    name: { type: "string", description: "Specify the name of the object" },
    method: { type: "string", enum: ["GET", "POST", "PUT"], default: "GET" },
    verb: { anyOf: [{ const: "a" }, { const: 2 }] },
    replicas: { type: "integer", minimum: 0, default: 1 },
    ratio: { type: "number", exclusiveMaximum: 1 },
    debug: { type: "boolean" },
    body: { type: "object" },
    labels: { type: "object", additionalProperties: { type: "string" } },
    hosts: { type: "array", items: { type: "string" } },
    weights: { type: "array", items: { type: "integer" } },
    ports: { type: "array", items: { type: "object", properties: { port: { type: "integer" } } } },
    target: { anyOf: [{ type: "string" }, { type: "integer" }] },
    image: {
      type: "object",
      required: ["repo"],
      additionalProperties: false,
      properties: { repo: { type: "string", pattern: "^[a-z/]+$" }, tag: { type: "string", default: "latest" } },
    },
    extra: { type: "object", properties: { note: { type: "string" }, level: { type: "integer", default: 3 } } },
  },
};

describe("fieldsOf", () => {
  it("gives each construct its kind, in the schema's order, with required and defaults", () => {
    const fs = fieldsOf(schema);
    expect(fs.map((f) => [f.path, f.kind, f.required])).toEqual([
      ["name", "string", true],
      ["method", "enum", false],
      ["verb", "enum", false],
      ["replicas", "integer", false],
      ["ratio", "number", false],
      ["debug", "boolean", false],
      ["body", "json", false],
      ["labels", "json", false],
      ["hosts", "lines", false],
      ["weights", "lines", false],
      ["ports", "json", false],
      ["target", "scalar", true],
      ["image", "object", true],
      ["extra", "object", false],
    ]);
    const image = fs.find((f) => f.name === "image");
    expect(image?.kind === "object" && image.fields.map((f) => [f.path, f.kind, f.required])).toEqual([
      ["image.repo", "string", true],
      ["image.tag", "string", false],
    ]);
    expect(fs[0].description).toBe("Specify the name of the object");
  });

  it("reads no schema as no fields, and a parameter without properties as one JSON field", () => {
    expect(fieldsOf(null)).toEqual([]);
    const [f] = fieldsOf({ type: "object", additionalProperties: true });
    expect([f.path, f.kind]).toEqual(["", "json"]);
  });
});

describe("initialValues", () => {
  it("fills in the defaults as the inputs' text", () => {
    expect(initialValues(fieldsOf(schema))).toEqual({
      name: "",
      method: "0",
      verb: "",
      replicas: "1",
      ratio: "",
      debug: "false",
      body: "",
      labels: "",
      hosts: "",
      weights: "",
      ports: "",
      target: "",
      "image.repo": "",
      "image.tag": "latest",
      "extra.note": "",
      "extra.level": "3",
    });
  });
});

describe("collect", () => {
  const fs = fieldsOf(schema);
  const base = initialValues(fs);
  const good: Values = { ...base, name: "web", target: "8080", "image.repo": "nginx" };

  it.each<[string, Values, Record<string, unknown>]>([
    [
      "the required fields and the defaults; untouched optional objects, empty fields and an unticked optional checkbox left out",
      good,
      { name: "web", method: "GET", replicas: 1, target: 8080, image: { repo: "nginx", tag: "latest" } },
    ],
    [
      "every kind filled in",
      {
        ...good,
        method: "2",
        verb: "1",
        replicas: "0",
        ratio: "0.5",
        debug: "true",
        body: '{"a": [1]}',
        labels: '{"tier": "web"}',
        hosts: "a.example\n\n  b.example  \n",
        weights: "1\n-2",
        ports: '[{"port": 80}]',
        target: "web",
        "extra.note": "hi",
      },
      {
        name: "web",
        method: "PUT",
        verb: 2,
        replicas: 0,
        ratio: 0.5,
        debug: true,
        body: { a: [1] },
        labels: { tier: "web" },
        hosts: ["a.example", "b.example"],
        weights: [1, -2],
        ports: [{ port: 80 }],
        target: "web",
        image: { repo: "nginx", tag: "latest" },
        extra: { note: "hi", level: 3 },
      },
    ],
    ["an emptied default is left out", { ...good, replicas: "", method: "" }, { name: "web", target: 8080, image: { repo: "nginx", tag: "latest" } }],
  ])("%s", (_, values, want) => {
    const got = collect(fs, values);
    expect(got.errors).toEqual({});
    expect(got.properties).toEqual(want);
  });

  it.each<[string, Values, Record<string, string>]>([
    ["required fields left empty", base, { name: "required", target: "required", "image.repo": "required" }],
    ["not a number", { ...good, replicas: "two" }, { replicas: '"two" is not a number' }],
    ["a number that is not whole", { ...good, replicas: "1.5" }, { replicas: '"1.5" is not a whole number' }],
    ["below the minimum", { ...good, replicas: "-1" }, { replicas: "must be at least 0" }],
    ["at an exclusive maximum", { ...good, ratio: "1" }, { ratio: "must be less than 1" }],
    ["not matching the pattern", { ...good, "image.repo": "Nginx" }, { "image.repo": "must match ^[a-z/]+$" }],
    ["a bad line of a list", { ...good, weights: "1\nx" }, { weights: 'line 2: "x" is not a number' }],
    ["not JSON", { ...good, body: "{a:" }, { body: expect.stringMatching(/^not JSON: /) as unknown as string }],
    ["a changed optional object with a bad field", { ...good, "extra.level": "high" }, { "extra.level": '"high" is not a number' }],
  ])("%s", (_, values, want) => {
    expect(collect(fs, values).errors).toEqual(want);
  });

  it("reads a parameter without properties from one JSON object", () => {
    const f = fieldsOf({ type: "object" });
    expect(collect(f, { "": '{"a": 1}' })).toEqual({ properties: { a: 1 }, errors: {} });
    expect(collect(f, { "": "[1]" }).errors).toEqual({ "": "the properties must be a JSON object" });
  });
});

describe("jsonOrString", () => {
  it.each<[string, unknown]>([
    ["true", true],
    ["3", 3],
    ['"3"', "3"],
    ['{"a":1}', { a: 1 }],
    ["hello", "hello"],
    ["", ""],
    ["{broken", "{broken"],
  ])("%s", (text, want) => {
    expect(jsonOrString(text)).toEqual(want);
  });
});
