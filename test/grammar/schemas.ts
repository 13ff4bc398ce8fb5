/**
 * JSON Schemas for the structured-output tests: every supported keyword, alone and combined
 * (nested objects, bounded arrays, enums, anyOf/oneOf, $ref/$defs with recursion, string
 * lengths, number bounds, required and optional properties, additionalProperties).
 */
export const SCHEMAS: Array<{ name: string; schema: Record<string, unknown> | boolean }> = [
  // Primitives.
  { name: "string", schema: { type: "string" } },
  { name: "integer", schema: { type: "integer" } },
  { name: "number", schema: { type: "number" } },
  { name: "boolean", schema: { type: "boolean" } },
  { name: "null", schema: { type: "null" } },
  { name: "string or null", schema: { type: ["string", "null"] } },
  { name: "any value", schema: {} },
  { name: "true schema", schema: true },
  { name: "const", schema: { const: "fixed" } },
  { name: "enum strings", schema: { enum: ["red", "green", "blue"] } },
  { name: "enum mixed", schema: { enum: ["a", 1, 2.5, true, null, { k: [1, "x"] }] } },
  // String lengths.
  { name: "string 1..5", schema: { type: "string", minLength: 1, maxLength: 5 } },
  { name: "string exactly 3", schema: { type: "string", minLength: 3, maxLength: 3 } },
  { name: "string at least 4", schema: { type: "string", minLength: 4 } },
  { name: "string at most 12", schema: { type: "string", maxLength: 12 } },
  // Number bounds.
  { name: "integer 0..10", schema: { type: "integer", minimum: 0, maximum: 10 } },
  { name: "integer -50..50", schema: { type: "integer", minimum: -50, maximum: 50 } },
  { name: "integer exclusive", schema: { type: "integer", exclusiveMinimum: 3, exclusiveMaximum: 9 } },
  { name: "integer 100..100000", schema: { type: "integer", minimum: 100, maximum: 100000 } },
  { name: "integer at most -7", schema: { type: "integer", maximum: -7 } },
  { name: "number 0..1", schema: { type: "number", minimum: 0, maximum: 1 } },
  { name: "number -1.5..2.25", schema: { type: "number", minimum: -1.5, maximum: 2.25 } },
  { name: "number positive", schema: { type: "number", exclusiveMinimum: 0 } },
  { name: "number 0.1..0.3 exclusive", schema: { type: "number", minimum: 0.1, exclusiveMaximum: 0.3 } },
  { name: "number -100..-0.5", schema: { type: "number", minimum: -100, maximum: -0.5 } },
  // Arrays.
  { name: "array of strings up to 3", schema: { type: "array", items: { type: "string", maxLength: 10 }, maxItems: 3 } },
  { name: "array of integers 1..2", schema: { type: "array", items: { type: "integer" }, minItems: 1, maxItems: 2 } },
  { name: "array of booleans exactly 3", schema: { type: "array", items: { type: "boolean" }, minItems: 3, maxItems: 3 } },
  { name: "array at least 2", schema: { type: "array", items: { enum: [1, 2, 3] }, minItems: 2, maxItems: 6 } },
  { name: "empty array", schema: { type: "array", maxItems: 0 } },
  { name: "tuple", schema: { type: "array", prefixItems: [{ type: "string", maxLength: 6 }, { type: "integer", minimum: 0, maximum: 9 }, { type: "boolean" }], items: false, minItems: 2 } },
  { name: "nested arrays", schema: { type: "array", items: { type: "array", items: { type: "number", minimum: 0, maximum: 5 }, maxItems: 3 }, maxItems: 3 } },
  { name: "array of objects", schema: { type: "array", items: { type: "object", properties: { id: { type: "integer" }, ok: { type: "boolean" } }, required: ["id"] }, minItems: 1, maxItems: 3 } },
  // Objects.
  { name: "empty object", schema: { type: "object", additionalProperties: false } },
  { name: "object required", schema: { type: "object", properties: { a: { type: "string", maxLength: 8 }, b: { type: "integer" } }, required: ["a", "b"] } },
  { name: "object optional", schema: { type: "object", properties: { a: { type: "string", maxLength: 8 }, b: { type: "boolean" }, c: { type: "null" } } } },
  { name: "object mixed required", schema: { type: "object", properties: { x: { type: "number" }, y: { type: "number" }, label: { type: "string", maxLength: 6 } }, required: ["y"], additionalProperties: false } },
  { name: "object additional true", schema: { type: "object", properties: { id: { type: "integer" } }, required: ["id"], additionalProperties: true } },
  { name: "object additional schema", schema: { type: "object", properties: { id: { type: "integer", minimum: 0 } }, additionalProperties: { type: "integer", minimum: -5, maximum: 5 } } },
  { name: "object required outside properties", schema: { type: "object", required: ["k"], additionalProperties: { type: "boolean" } } },
  {
    name: "nested objects",
    schema: {
      type: "object",
      properties: {
        user: {
          type: "object",
          properties: {
            name: { type: "string", minLength: 1, maxLength: 10 },
            address: { type: "object", properties: { city: { type: "string", maxLength: 10 }, zip: { type: "string", minLength: 5, maxLength: 5 } }, required: ["city"] },
          },
          required: ["name", "address"],
        },
        active: { type: "boolean" },
      },
      required: ["user"],
    },
  },
  { name: "object with enum properties", schema: { type: "object", properties: { size: { enum: ["S", "M", "L"] }, qty: { type: "integer", minimum: 1, maximum: 9 } }, required: ["size", "qty"] } },
  { name: "object with unicode keys", schema: { type: "object", properties: { "naïve key": { type: "string", maxLength: 4 }, "日本": { type: "integer" }, 'q"uote': { type: "boolean" } }, required: ["日本", 'q"uote'] } },
  // Combinators.
  { name: "anyOf primitives", schema: { anyOf: [{ type: "string", maxLength: 5 }, { type: "integer", minimum: 0, maximum: 99 }] } },
  { name: "anyOf objects", schema: { anyOf: [{ type: "object", properties: { a: { type: "integer" } }, required: ["a"] }, { type: "object", properties: { b: { type: "string", maxLength: 4 } }, required: ["b"] }] } },
  { name: "anyOf with null", schema: { anyOf: [{ type: "null" }, { type: "number", minimum: 0, maximum: 100 }] } },
  {
    name: "oneOf discriminated",
    schema: {
      oneOf: [
        { type: "object", properties: { kind: { const: "circle" }, r: { type: "number", minimum: 0, maximum: 10 } }, required: ["kind", "r"] },
        { type: "object", properties: { kind: { const: "square" }, side: { type: "integer", minimum: 1, maximum: 20 } }, required: ["kind", "side"] },
      ],
    },
  },
  { name: "oneOf by type", schema: { oneOf: [{ type: "string", maxLength: 4 }, { type: "boolean" }, { type: "array", items: { type: "null" }, maxItems: 2 }] } },
  { name: "oneOf closed objects", schema: { oneOf: [{ type: "object", properties: { a: { type: "integer" } }, required: ["a"], additionalProperties: false }, { type: "object", properties: { b: { type: "integer" } }, required: ["b"], additionalProperties: false }] } },
  // References.
  { name: "$defs reference", schema: { type: "object", properties: { p: { $ref: "#/$defs/point" }, q: { $ref: "#/$defs/point" } }, required: ["p"], $defs: { point: { type: "object", properties: { x: { type: "integer" }, y: { type: "integer" } }, required: ["x", "y"] } } } },
  { name: "definitions reference", schema: { type: "array", items: { $ref: "#/definitions/color" }, maxItems: 4, definitions: { color: { enum: ["cyan", "magenta"] } } } },
  { name: "recursive tree", schema: { $ref: "#/$defs/node", $defs: { node: { type: "object", properties: { v: { type: "integer", minimum: 0, maximum: 9 }, kids: { type: "array", items: { $ref: "#/$defs/node" }, maxItems: 2 } }, required: ["v"] } } } },
  { name: "recursive list from root", schema: { type: "object", properties: { head: { type: "string", maxLength: 3 }, tail: { $ref: "#" } }, required: ["head"] } },
  { name: "ref chain", schema: { $ref: "#/$defs/a", $defs: { a: { $ref: "#/$defs/b" }, b: { type: "array", items: { $ref: "#/$defs/c" }, maxItems: 2 }, c: { type: "string", maxLength: 3 } } } },
  // Mixed, realistic.
  {
    name: "order",
    schema: {
      type: "object",
      properties: {
        id: { type: "integer", minimum: 1 },
        customer: { type: "string", minLength: 2, maxLength: 20 },
        items: { type: "array", minItems: 1, maxItems: 3, items: { type: "object", properties: { sku: { type: "string", minLength: 3, maxLength: 8 }, qty: { type: "integer", minimum: 1, maximum: 10 }, price: { type: "number", minimum: 0, maximum: 1000 } }, required: ["sku", "qty"], additionalProperties: false } },
        status: { enum: ["new", "paid", "shipped"] },
        note: { type: ["string", "null"], maxLength: 30 },
      },
      required: ["id", "items", "status"],
      additionalProperties: false,
    },
  },
  {
    name: "event",
    schema: {
      type: "object",
      properties: {
        title: { type: "string", maxLength: 16 },
        when: { type: "object", properties: { day: { type: "integer", minimum: 1, maximum: 31 }, month: { type: "integer", minimum: 1, maximum: 12 } }, required: ["day", "month"] },
        tags: { type: "array", items: { type: "string", maxLength: 8 }, maxItems: 4 },
        location: { anyOf: [{ type: "null" }, { type: "object", properties: { lat: { type: "number", minimum: -90, maximum: 90 }, lon: { type: "number", minimum: -180, maximum: 180 } }, required: ["lat", "lon"] }] },
      },
      required: ["title", "when"],
    },
  },
];
