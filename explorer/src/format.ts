// How the explorer writes values: short hashes with the whole one in a title, amounts in
// RLC, times in the reader's locale.

const NRLC_PER_RLC = 1_000_000_000n;

/** An amount of nRLC as RLC, without trailing zeros. */
export function rlc(nrlc: string | bigint): string {
  const value = BigInt(nrlc);
  const whole = value / NRLC_PER_RLC;
  const fraction = (value % NRLC_PER_RLC).toString().padStart(9, "0").replace(/0+$/, "");
  return fraction ? `${whole}.${fraction} RLC` : `${whole} RLC`;
}

/** `0x1a2b3c…4d5e`. */
export function short(hash: string): string {
  return hash.length > 16 ? `${hash.slice(0, 8)}…${hash.slice(-4)}` : hash;
}

/** A unix time (seconds) in the reader's time zone. */
export function time(seconds: number | string): string {
  const date = new Date(Number(seconds) * 1000);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

const ZERO_ADDRESS = "0x0000000000000000000000000000000000000000";

export function isZero(address: string): boolean {
  return address.toLowerCase() === ZERO_ADDRESS;
}

/** An element with children; strings become text (never HTML). */
export function h(
  tag: string,
  attributes: Record<string, string> = {},
  ...children: (Node | string | null | undefined)[]
): HTMLElement {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  for (const child of children) {
    if (child === null || child === undefined) continue;
    element.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return element;
}

/** A link to an explorer view, the whole value in its title. */
export function link(view: string, value: string, text = short(value)): HTMLElement {
  return h("a", { href: `#/${view}/${value}`, title: value }, text);
}

/** A table with a caption, column headers and rows. */
export function table(caption: string, headers: string[], rows: (Node | string)[][]): HTMLElement {
  const head = h("tr", {}, ...headers.map((name) => h("th", { scope: "col" }, name)));
  const body = rows.map((cells) => h("tr", {}, ...cells.map((cell) => h("td", {}, cell))));
  const empty = rows.length
    ? null
    : h("tr", {}, h("td", { colspan: String(headers.length) }, "none"));
  return h(
    "div",
    { class: "table" },
    h("table", {}, h("caption", {}, caption), h("thead", {}, head), h("tbody", {}, ...body, empty)),
  );
}

/** Key-value pairs. */
export function facts(pairs: [string, Node | string][]): HTMLElement {
  return h("dl", {}, ...pairs.flatMap(([key, value]) => [h("dt", {}, key), h("dd", {}, value)]));
}

/** A status as text, with a class for its colour (the text says it all without colour). */
export function status(text: string): HTMLElement {
  return h("span", { class: `status status-${text.toLowerCase()}` }, text);
}
