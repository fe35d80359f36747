// The "advanced" options fold: defaults and bounds come from the API's own schema (JobOptions in
// openapi.json) when the service publishes it, and from this deployment's limits (web/config.json), so the
// page follows the API instead of duplicating it. The HTML carries the same defaults for a hardened
// deployment that hides its schema. An `engine` choice appears only if the API declares one with named
// values. The API validates everything again; its 422 message is shown if the page let something through.

const FIELDS = [
  { name: "engine", id: "opt-engine", label: "Engine" },
  { name: "seed", id: "opt-seed", label: "Seed" },
  { name: "takes", id: "opt-takes", label: "Takes" },
  { name: "temperature", id: "opt-temperature", label: "Temperature" },
  { name: "guidance_scale", id: "opt-guidance", label: "Guidance" },
  { name: "key_strength", id: "opt-key", label: "Key pull" },
  { name: "format", id: "opt-format", label: "Format" },
];

/** The non-null branch of `anyOf: [{...}, {type: "null"}]`, or the property itself. */
function flatten(prop) {
  if (!prop || !prop.anyOf) return prop || null;
  const branch = prop.anyOf.find((p) => p.type !== "null");
  return branch ? { ...prop, ...branch } : null;
}

function jobOptionsSchema(openapi) {
  const schemas = (openapi && openapi.components && openapi.components.schemas) || {};
  const name = Object.keys(schemas).find((key) => key === "JobOptions" || key.startsWith("JobOptions"));
  return name ? schemas[name].properties || {} : {};
}

export class Options {
  constructor() {
    this.inputs = Object.fromEntries(FIELDS.map((f) => [f.name, document.getElementById(f.id)]));
    this.engineField = document.getElementById("engine-field");
  }

  apply(openapi, config) {
    const props = jobOptionsSchema(openapi);
    for (const { name } of FIELDS) {
      const prop = flatten(props[name]);
      const input = this.inputs[name];
      if (!prop || !input) continue;
      if (input.tagName === "SELECT") {
        if (Array.isArray(prop.enum)) this.choices(input, prop.enum, prop.default);
        continue;
      }
      const integer = prop.type === "integer";
      if (prop.minimum !== undefined) input.min = String(prop.minimum);
      if (prop.exclusiveMinimum !== undefined) input.min = String(prop.exclusiveMinimum + (integer ? 1 : 0.01));
      if (prop.maximum !== undefined) input.max = String(prop.maximum);
      if (prop.default !== undefined && prop.default !== null) input.value = String(prop.default);
    }
    const engine = flatten(props.engine);
    this.engineField.hidden = !(engine && Array.isArray(engine.enum) && engine.enum.length > 1);
    if (config && config.max_takes) {
      this.inputs.takes.max = String(Math.min(Number(this.inputs.takes.max) || Infinity, config.max_takes));
    }
  }

  choices(select, values, chosen) {
    select.replaceChildren(
      ...values.map((value) => {
        const option = document.createElement("option");
        option.value = option.textContent = String(value);
        option.selected = value === chosen;
        return option;
      }),
    );
  }

  /** Form fields for POST v1/jobs, or null (and the browser's own message on the field) when invalid. */
  fields() {
    const fields = {};
    for (const { name } of FIELDS) {
      const input = this.inputs[name];
      if (name === "engine" && this.engineField.hidden) continue;
      if (!input.checkValidity()) {
        input.closest("details").open = true;
        input.reportValidity();
        return null;
      }
      if (input.value.trim() !== "") fields[name] = input.value.trim();
    }
    return fields;
  }

  /** Put a finished job's settings back into the form (its seed included) to reproduce or vary it. */
  fill(options) {
    for (const { name } of FIELDS) {
      const value = options[name];
      if (value !== undefined && value !== null && this.inputs[name]) this.inputs[name].value = String(value);
    }
  }

  /** [label, value] rows describing a job's settings. */
  static describe(job) {
    const rows = FIELDS.filter((f) => job.options[f.name] !== undefined && job.options[f.name] !== null).map(
      (f) => [f.label, String(job.options[f.name])],
    );
    rows.push(["Vocal", `${job.filename} (${job.duration_s.toFixed(1)} s)`]);
    if (job.started_at && job.finished_at) {
      rows.push(["Generated in", `${(job.finished_at - job.started_at).toFixed(1)} s`]);
    }
    rows.push(["Job", job.id]);
    return rows;
  }
}
