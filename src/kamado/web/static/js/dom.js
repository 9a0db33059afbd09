// Building the DOM safely. Every string becomes a text node or an attribute value set through the DOM
// API: nothing user-controlled is ever parsed as HTML (no innerHTML, no insertAdjacentHTML anywhere).

const SVG_NS = "http://www.w3.org/2000/svg";

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

function setAttrs(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key.startsWith("on")) {
      throw new Error(`refusing a non-function event attribute ${key}`);
    } else if (key === "style") {
      el.style.cssText = value; // through the CSSOM: allowed by the page's CSP, unlike a style attribute
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key === "value" || key === "checked" || key === "disabled" || key === "selected") {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
}

/** An HTML element: h("a", {href: "#/x", class: "k"}, "text", child, [more]). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/** An SVG element, built the same way. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** Replace an element's children. */
export function fill(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

/** A link to a console route; the name goes into the hash percent-encoded. */
export function link(route, text, attrs = {}) {
  return h("a", { href: "#" + route, ...attrs }, text);
}

export function enc(name) {
  return encodeURIComponent(name);
}
