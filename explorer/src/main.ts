// The poco explorer: the market as the market's API tells it, one view per URL
// (`#/market`, `#/deal/<id>`, `#/task/<id>`, `#/account/<address>`, `#/order/<kind>/<hash>`,
// `#/api`).

import * as api from "./api";
import { h } from "./format";
import { accountView, apiView, dealView, marketView, orderView, taskView } from "./views";

const main = document.getElementById("main")!;
const notice = document.getElementById("notice")!;
let socket: WebSocket | null = null;

/** Says something to the reader, and to screen readers through the live region. */
function say(text: string): void {
  notice.textContent = text;
}

/** What the search box was given, as a view: an account, or whatever a hash names. */
async function search(text: string): Promise<string | null> {
  const value = text.trim();
  if (/^0x[0-9a-fA-F]{40}$/.test(value)) return `#/account/${value}`;
  if (!/^0x[0-9a-fA-F]{64}$/.test(value)) return null;
  const found = async (probe: () => Promise<unknown>) => probe().then(() => true, () => false);
  if (await found(() => api.deal(value))) return `#/deal/${value}`;
  if (await found(() => api.task(value))) return `#/task/${value}`;
  for (const kind of api.BOOKS) {
    if (await found(() => api.order(kind, value))) return `#/order/${kind}/${value}`;
  }
  return null;
}

function closeStream(): void {
  socket?.close();
  socket = null;
}

/** Shows the view the URL names. */
async function route(): Promise<void> {
  closeStream();
  const [path, query = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const [view = "market", ...args] = (path ?? "").split("/").filter(Boolean);
  main.setAttribute("aria-busy", "true");
  try {
    let content: HTMLElement;
    switch (view) {
      case "deal":
        content = await dealView(args[0]!);
        break;
      case "task":
        content = await taskView(args[0]!);
        break;
      case "account":
        content = await accountView(args[0]!);
        break;
      case "order":
        content = await orderView(args[0] as api.Book, args[1]!);
        break;
      case "api":
        content = await apiView();
        break;
      default: {
        const filters = Object.fromEntries(new URLSearchParams(query));
        content = await marketView(filters);
        follow(filters);
      }
    }
    main.replaceChildren(content);
    document.title = `${content.querySelector("h1")?.textContent ?? "poco"} · poco explorer`;
    say("");
  } catch (error) {
    const message = error instanceof api.ApiError ? error.message : String(error);
    main.replaceChildren(h("section", {}, h("h1", {}, "Not found"), h("p", {}, message)));
    say(message);
  } finally {
    main.removeAttribute("aria-busy");
  }
}

/** Keeps the market view live: any order or deal event redraws it (at most every 300 ms). */
function follow(filters: Record<string, string>): void {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws`);
  let pending: number | undefined;
  socket.addEventListener("message", () => {
    if (pending !== undefined) return;
    pending = window.setTimeout(async () => {
      pending = undefined;
      const content = await marketView(filters).catch(() => null);
      if (content && location.hash.replace(/^#\/?/, "").split("/")[0] !== "deal") {
        main.replaceChildren(content);
        say("the market changed: updated");
      }
    }, 300);
  });
}

document.getElementById("search")!.addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = document.getElementById("query") as HTMLInputElement;
  const target = await search(input.value);
  if (target) location.hash = target;
  else say(`nothing found for ${input.value.trim() || "an empty search"}: give an address, a deal or task id, or an order hash`);
});

window.addEventListener("hashchange", route);
void route();
