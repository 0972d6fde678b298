/* Rule builder for the segment admin: edits the JSON rule in the textarea next to it without
   typing JSON. Plain JavaScript, no build step. The textarea stays the source of truth: the
   builder writes every change into it, and reads it again when it is edited by hand. */
(function () {
  "use strict";

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([key, value]) => {
      if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    });
    (children || []).forEach((child) => child && node.appendChild(child));
    return node;
  }

  function option(value, label, selected) {
    const node = el("option", { value: value, text: label });
    if (selected) node.selected = true;
    return node;
  }

  function init(container) {
    const textarea = document.getElementById(container.dataset.for);
    const schema = JSON.parse(document.getElementById(container.dataset.schema).textContent);
    const texts = schema.texts;
    const fields = Object.fromEntries(schema.fields.map((f) => [f.name, f]));
    // null while the JSON is not a JSON object: the builder then waits and never overwrites it.
    // (A new segment's JSON field shows no rule as "null".)
    const initial = textarea.value.trim();
    let rule = initial && initial !== "null" ? parse(initial) : { all: [] };
    let listId = 0;

    function parse(text) {
      try {
        const value = JSON.parse(text);
        return value && typeof value === "object" ? value : null;
      } catch (error) {
        return null;
      }
    }

    function specOf(name) {
      if (fields[name]) return fields[name];
      if (name && name.startsWith("traits.")) return fields["traits."];
      return null;
    }

    function sync() {
      textarea.value = JSON.stringify(rule, null, 2);
    }

    function render() {
      if (rule === null) {
        container.replaceChildren(el("p", { class: "help", text: texts.invalid_json }));
        return;
      }
      container.replaceChildren(node(rule, (replacement) => { rule = replacement; render(); }));
      sync();
    }

    textarea.addEventListener("change", () => {
      rule = parse(textarea.value);
      render();
    });

    function isObject(value) {
      return value !== null && typeof value === "object" && !Array.isArray(value);
    }

    // What the builder cannot draw it shows as JSON and keeps as it is (validation explains).
    function node(value, replace) {
      if (isObject(value) && (Array.isArray(value.all) || Array.isArray(value.any))) {
        return group(value, replace);
      }
      if (isObject(value) && isObject(value.not)) return negation(value, replace);
      if (isObject(value) && typeof value.field === "string") return condition(value, replace);
      return unknown(value);
    }

    function unknown(value) {
      return el("span", { class: "errornote", text: texts.unknown + " " + JSON.stringify(value) });
    }

    function newCondition() {
      const spec = schema.fields[0];
      return { field: spec.name, op: spec.ops[0].op, value: defaultValue(spec, spec.ops[0].op) };
    }

    function defaultValue(spec, op) {
      if (op === "exists") return true;
      let value = "";
      if (spec.type === "integer" || spec.type === "money") value = 0;
      if (spec.type === "boolean") value = true;
      if (spec.type === "consent_state") value = schema.consent_states[0].value;
      return op === "in" || op === "not_in" ? [value] : value;
    }

    function group(value, replace) {
      const kind = Array.isArray(value.all) ? "all" : "any";
      const children = value[kind];
      const kindSelect = el("select", {
        onchange: (event) => { replace({ [event.target.value]: children }); },
      }, [option("all", texts.all, kind === "all"), option("any", texts.any, kind === "any")]);
      const list = el("ul", { class: "pzn-rb-children" });
      children.forEach((child, index) => {
        list.appendChild(el("li", {}, [
          node(child, (replacement) => { children[index] = replacement; render(); }),
          el("button", {
            type: "button", title: texts.negate, text: "¬",
            onclick: () => { children[index] = { not: child }; render(); },
          }),
          el("button", {
            type: "button", class: "pzn-rb-remove", title: texts.remove, text: "✕",
            onclick: () => { children.splice(index, 1); render(); },
          }),
        ]));
      });
      return el("div", { class: "pzn-rb-group" }, [
        kindSelect,
        list,
        el("button", { type: "button", text: texts.add_condition,
          onclick: () => { children.push(newCondition()); render(); } }),
        el("button", { type: "button", text: texts.add_group,
          onclick: () => { children.push({ all: [newCondition()] }); render(); } }),
        el("button", { type: "button", text: texts.negate,
          onclick: () => { replace({ not: value }); } }),
      ]);
    }

    function negation(value, replace) {
      return el("div", { class: "pzn-rb-not" }, [
        el("strong", { text: texts.not + " " }),
        el("button", { type: "button", text: texts.unnegate,
          onclick: () => { replace(value.not); } }),
        node(value.not, (replacement) => { value.not = replacement; render(); }),
      ]);
    }

    function condition(value, replace) {
      const spec = specOf(value.field);
      if (!spec) return unknown(value);
      const fieldSelect = el("select", {
        onchange: (event) => {
          const next = fields[event.target.value];
          const name = next.name === "traits." ? "traits.key" : next.name;
          replace({ field: name, op: next.ops[0].op, value: defaultValue(next, next.ops[0].op) });
        },
      });
      schema.groups.forEach((groupInfo) => {
        const optgroup = el("optgroup", { label: groupInfo.label });
        schema.fields.filter((f) => f.group === groupInfo.name).forEach((f) => {
          optgroup.appendChild(option(f.name, f.label, f === spec));
        });
        fieldSelect.appendChild(optgroup);
      });
      const parts = [fieldSelect];
      if (spec.name === "traits.") {
        parts.push(el("input", {
          type: "text", size: 12, value: value.field.slice(7), placeholder: texts.trait_key,
          onchange: (event) => { value.field = "traits." + event.target.value.trim(); sync(); },
        }));
      }
      parts.push(el("select", {
        onchange: (event) => {
          const op = event.target.value;
          const many = op === "in" || op === "not_in";
          const was = Array.isArray(value.value);
          // Keep what was entered where it fits the new operator; else start from its default
          // (never a yes/no left from "exists" on a text field, never a missing value).
          if (op === "exists" || value.op === "exists" || (was && !value.value.length)) {
            value.value = defaultValue(spec, op);
          } else if (many && !was) value.value = [value.value];
          else if (!many && was) value.value = value.value[0];
          value.op = op;
          render();
        },
      }, [
        // An operator the field does not take (typed in the JSON) is shown, not silently replaced.
        spec.ops.some((o) => o.op === value.op) ? null : option(value.op, value.op + " (?)", true),
        ...spec.ops.map((o) => option(o.op, o.label, o.op === value.op)),
      ]));
      parts.push(valueInput(spec, value));
      spec.params.forEach((param) => {
        parts.push(el("label", { text: " " + schema.param_labels[param] + " " }));
        parts.push(el("input", {
          type: "number", min: 1, step: 1, class: "vIntegerField",
          value: value[param] === undefined ? "" : value[param],
          onchange: (event) => {
            const number = parseInt(event.target.value, 10);
            if (Number.isNaN(number)) delete value[param]; else value[param] = number;
            sync();
          },
        }));
      });
      return el("div", { class: "pzn-rb-condition" }, parts);
    }

    function valueInput(spec, value) {
      if (value.op === "exists" || spec.type === "boolean") {
        return el("select", {
          onchange: (event) => { value.value = event.target.value === "true"; sync(); },
        }, [option("true", texts.yes, value.value === true),
            option("false", texts.no, value.value === false)]);
      }
      const many = value.op === "in" || value.op === "not_in";
      if (spec.type === "consent_state" && !many) {
        return el("select", {
          onchange: (event) => { value.value = event.target.value; sync(); },
        }, schema.consent_states.map((s) => option(s.value, s.label, s.value === value.value)));
      }
      const numeric = spec.type === "integer" || spec.type === "money";
      const shown = Array.isArray(value.value) ? value.value.join(", ") : value.value;
      const attrs = {
        type: numeric && !many ? "number" : "text",
        value: shown === undefined ? "" : shown,
        size: many ? 40 : 20,
        placeholder: many ? texts.comma_separated : "",
        onchange: (event) => {
          const convert = (text) => {
            if (spec.type === "integer") return parseInt(text, 10);
            if (spec.type === "money") return text.trim();
            return text.trim();
          };
          const raw = event.target.value;
          value.value = many
            ? raw.split(",").map((t) => t.trim()).filter((t) => t !== "").map(convert)
            : convert(raw);
          sync();
        },
      };
      if (numeric && !many) { attrs.min = 0; attrs.step = spec.type === "money" ? "0.01" : "1"; }
      const input = el("input", attrs);
      if (schema.searchable.includes(spec.type)) {
        const id = container.dataset.for + "-choices-" + (listId += 1);
        const datalist = el("datalist", { id: id });
        input.setAttribute("list", id);
        input.setAttribute("autocomplete", "off");
        let asked = 0;
        input.addEventListener("input", () => {
          // For "is one of", suggest for the last value and keep the ones before it.
          const typed = input.value.split(",").map((t) => t.trim());
          const term = many ? typed.pop() : input.value.trim();
          const before = many ? typed.filter((t) => t !== "") : [];
          const url = container.dataset.choicesUrl + "?type=" + encodeURIComponent(spec.type)
            + "&term=" + encodeURIComponent(term);
          const request = (asked += 1);
          fetch(url, { credentials: "same-origin" })
            .then((response) => response.json())
            .then((data) => {
              if (request !== asked) return; // an answer for what was typed before: too late
              datalist.replaceChildren(...data.results.map(
                (r) => option([...before, r.value].join(", "), r.label),
              ));
            })
            .catch(() => {});
        });
        return el("span", {}, [input, datalist]);
      }
      return input;
    }

    render();
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll(".pzn-rule-builder").forEach(init);
  });
})();
