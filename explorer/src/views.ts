// The explorer's views, one per kind of thing a URL names.

import uPlot from "uplot";

import * as api from "./api";
import { facts, h, isZero, link, rlc, short, status, table, time } from "./format";

/** How many tasks a deal page shows in detail (each is one request to the market). */
const DETAILED_TASKS = 20;

/** A task's status as its events tell it. */
export function taskStatus(events: api.TaskEvent[]): string {
  let current = "UNSET";
  for (const event of events) {
    switch (event.kind) {
      case "initialize":
      case "contribute":
      case "reopen":
        current = "ACTIVE";
        break;
      case "consensus":
        current = "REVEALING";
        break;
      case "finalize":
        current = "COMPLETED";
        break;
      case "claimed":
        current = "FAILED";
        break;
    }
  }
  return current;
}

/** What became of a worker's contribution to a task. */
function outcome(events: api.TaskEvent[], worker: string, stake: bigint): Node {
  const mine = (kind: string) =>
    events.find((e) => e.kind === kind && e.account?.toLowerCase() === worker.toLowerCase());
  const accurate = mine("accurate_contribution");
  if (accurate) return h("span", { class: "won" }, `winning: reward ${rlc(accurate.value ?? "0")}`);
  if (mine("faulty_contribution")) {
    return h("span", { class: "lost" }, `losing: stake of ${rlc(stake)} seized, score cut`);
  }
  if (mine("silent_seat")) return h("span", { class: "lost" }, "silent seat");
  if (events.some((e) => e.kind === "claimed")) return h("span", {}, `stake of ${rlc(stake)} returned: the task was claimed`);
  return h("span", {}, "pending");
}

/** The scheduler's stake in a task, in percent of the workerpool price (the protocol's
 * `WORKERPOOL_STAKE_RATIO`): what a claim seizes. */
const SCHEDULER_STAKE_PERCENT = 30n;

/** What a claim of a task moved, from the deal's prices: the sponsor's refund and the
 * scheduler's stake seized. */
function claimNote(events: api.TaskEvent[], deal: api.Deal): HTMLElement | null {
  const claimed = events.find((e) => e.kind === "claimed");
  if (!claimed) return null;
  const refund = BigInt(deal.appPrice) + BigInt(deal.datasetPrice) + BigInt(deal.workerpoolPrice);
  const seized = (BigInt(deal.workerpoolPrice) * SCHEDULER_STAKE_PERCENT) / 100n;
  // A claim pays the workers who proved the consensus, if there is one, from what it seized.
  const shared = events.filter((e) => e.kind === "accurate_contribution" && e.block === claimed.block).length;
  return h(
    "p",
    { class: "claim" },
    `Claimed after its final deadline (block ${claimed.block}): ${rlc(refund)} refunded to the sponsor `,
    link("account", deal.sponsor),
    `; the scheduler's stake of ${rlc(seized)} seized, `,
    shared ? `shared by the ${shared} worker(s) who proved the consensus.` : "burned: no worker proved a consensus.",
  );
}

/** The contributions to a task: worker, vote, stake, outcome. */
function contributions(events: api.TaskEvent[], stake: bigint): HTMLElement {
  const rows = events
    .filter((e) => e.kind === "contribute" && e.account)
    .map((e) => [
      link("account", e.account!),
      h("code", { title: e.value ?? "" }, short(e.value ?? "")),
      rlc(stake),
      outcome(events, e.account!, stake),
    ]);
  return table("Contributions", ["worker", "vote (result hash)", "stake", "outcome"], rows);
}

function timeline(events: api.TaskEvent[]): HTMLElement {
  const rows = events.map((e) => [
    e.kind.replaceAll("_", " "),
    e.account ? link("account", e.account) : "",
    e.results ?? (e.value ? h("code", { title: e.value }, short(e.value)) : ""),
    String(e.block),
    h("code", { title: e.transaction }, short(e.transaction)),
  ]);
  return table("Timeline", ["event", "account", "value", "block", "transaction"], rows);
}

export async function dealView(id: string): Promise<HTMLElement> {
  const view = await api.deal(id);
  const d = view.deal;
  const stake = BigInt(d.workerStake);
  const tasks = await api.dealTasks(id);
  const section = h("section", { "aria-labelledby": "deal-title" });
  section.append(
    h("h1", { id: "deal-title" }, "Deal ", h("code", { title: view.dealId }, short(view.dealId))),
    facts([
      ["deal id", h("code", {}, view.dealId)],
      ["app", link("account", d.app, d.app)],
      ["dataset", isZero(d.dataset) ? "none" : link("account", d.dataset, d.dataset)],
      ["workerpool", link("account", d.workerpool, d.workerpool)],
      ["requester", link("account", d.requester, d.requester)],
      ["beneficiary", link("account", d.beneficiary, d.beneficiary)],
      ["prices per task", `app ${rlc(d.appPrice)}, dataset ${rlc(d.datasetPrice)}, workerpool ${rlc(d.workerpoolPrice)}`],
      ["trust", d.trust],
      ["tag", d.tag],
      ["category", d.category],
      ["tasks", d.botSize],
      ["worker stake", rlc(stake)],
      ["matched", `${time(d.startTime)} (block ${view.block})`],
      ["orders", h("span", {}, ...orderLinks(view))],
    ]),
  );
  const rows: (Node | string)[][] = [];
  const details: HTMLElement[] = [];
  // The first tasks in detail, read at once; a larger deal's others on their own pages.
  const shown = tasks.tasks.slice(0, DETAILED_TASKS);
  const timelines = await Promise.all(shown.map((t) => api.taskEvents(t.taskId)));
  for (const [i, t] of shown.entries()) {
    const events = timelines[i]!.events;
    const state = taskStatus(events);
    rows.push([t.index, link("task", t.taskId), status(state)]);
    const finalize = events.find((e) => e.kind === "finalize");
    details.push(
      h(
        "section",
        { class: "task", "aria-label": `task ${t.index}` },
        h("h2", {}, "Task ", t.index, " ", status(state)),
        contributions(events, stake),
        finalize?.results ? resultLink(finalize.results) : null,
        claimNote(events, d),
      ),
    );
  }
  const more = tasks.tasks.length - shown.length;
  section.append(
    table("Tasks", ["index", "task", "status"], rows),
    ...(more > 0 ? [h("p", {}, `and ${more} more task(s): search one by its id`)] : []),
    ...details,
  );
  return section;
}

function orderLinks(view: api.DealView): (Node | string)[] {
  const pairs: [api.Book, string][] = [
    ["app", view.appHash],
    ["dataset", view.datasetHash],
    ["workerpool", view.workerpoolHash],
    ["request", view.requestHash],
  ];
  return pairs
    .filter(([, hash]) => !/^0x0+$/.test(hash))
    .flatMap(([kind, hash]) => [h("a", { href: `#/order/${kind}/${hash}`, title: hash }, `${kind} ${short(hash)}`), " "]);
}

function resultLink(results: string): HTMLElement {
  const text = `result: ${results}`;
  // Only a web address is a link; anything else is shown as it is.
  return /^https?:\/\//.test(results) ? h("p", {}, h("a", { href: results, rel: "noopener" }, text)) : h("p", {}, text);
}

export async function taskView(id: string): Promise<HTMLElement> {
  const [indexed, events] = await Promise.all([api.task(id), api.taskEvents(id)]);
  const stake = BigInt(indexed.deal.deal.workerStake);
  const state = taskStatus(events.events);
  return h(
    "section",
    { "aria-labelledby": "task-title" },
    h("h1", { id: "task-title" }, "Task ", h("code", { title: id }, short(id)), " ", status(state)),
    facts([
      ["task id", h("code", {}, id)],
      ["deal", link("deal", indexed.deal.dealId)],
      ["index", indexed.index],
      ["status", status(state)],
    ]),
    claimNote(events.events, indexed.deal.deal),
    contributions(events.events, stake),
    timeline(events.events),
  );
}

export async function accountView(address: string): Promise<HTMLElement> {
  const [history, requested, pooled, scores, money, registered] = await Promise.all([
    api.accountEvents(address),
    api.deals({ requester: address, limit: "20" }),
    api.deals({ workerpool: address, limit: "20" }),
    api.scores(address),
    api.funds(address),
    api.asset(address),
  ]);
  const kind = registered?.kind;
  const [sold, record] = await Promise.all([
    kind === "app" || kind === "dataset" ? api.deals({ [kind]: address, limit: "100" }) : null,
    registered ? assetRecord(registered) : null,
  ]);
  const events = history.events;
  const count = (kind: string) => events.filter((e) => e.kind === kind).length;
  const rows = events.map((e) => [
    e.kind.replaceAll("_", " "),
    e.taskId ? link("task", e.taskId) : e.workerpool ? link("account", e.workerpool) : "",
    e.value ? (/^0x/.test(e.value) ? h("code", { title: e.value }, short(e.value)) : rlc(e.value)) : "",
    String(e.block),
  ]);
  const workers = pooled.deals.length ? await poolWorkers(address) : null;
  const dealRows = (page: api.DealPage) =>
    page.deals.map((v) => [link("deal", v.dealId), link("account", v.deal.app), v.deal.botSize, time(v.deal.startTime)]);
  const title = kind ? { app: "App", dataset: "Dataset", workerpool: "Workerpool" }[kind] : "Account";
  return h(
    "section",
    { "aria-labelledby": "account-title" },
    h("h1", { id: "account-title" }, `${title} `, h("code", { title: address }, short(address))),
    // An asset is a contract of its registry: what counts is its record; an account holds
    // funds and, for a worker, a score.
    facts(
      registered
        ? [["address", h("code", {}, address)]]
        : [
            ["address", h("code", {}, address)],
            ["balance", rlc(money.balance)],
            ["frozen", h("span", {}, rlc(money.frozen), h("span", { class: "muted" }, ` (unfinished tasks' prices, stakes, bonds; at block ${money.block})`))],
            ["score", scores.scores[0] ? String(scores.scores[0].score) : "none yet"],
            ["accurate contributions", String(count("accurate_contribution"))],
            ["faulty contributions", String(count("faulty_contribution"))],
            ["deposits", String(count("deposit"))],
          ],
    ),
    ...(record ?? []),
    requested.deals.length ? table("Deals requested", ["deal", "app", "tasks", "matched"], dealRows(requested)) : null,
    pooled.deals.length ? table("Deals of this workerpool", ["deal", "app", "tasks", "matched"], dealRows(pooled)) : null,
    sold?.deals.length ? table(`Deals of this ${kind}`, ["deal", "app", "tasks", "matched"], dealRows(sold)) : null,
    ...(workers ?? []),
    kind === "app" || kind === "dataset" ? priceChart(kind, sold?.deals ?? [], (d) => (kind === "app" ? d.appPrice : d.datasetPrice)) : null,
    priceChart("workerpool", pooled.deals, (d) => d.workerpoolPrice),
    scores.scores.length
      ? table("Score over time (newest first)", ["block", "score"], scores.scores.map((s) => [String(s.block), String(s.score)]))
      : null,
    table("History (newest first)", ["event", "about", "value", "block"], rows),
  );
}

/** An asset's registry record, as its owner wrote it (shown as text, whatever it holds), and
 * its open orders. */
async function assetRecord(view: api.AssetView): Promise<HTMLElement[]> {
  const pairs: [string, Node | string][] = [["owner", link("account", view.owner, view.owner)]];
  switch (view.kind) {
    case "app":
      pairs.push(
        ["name", view.name],
        ["type", view.appType],
        ["fetched from", h("code", {}, view.multiaddr)],
        ["checksum (sha256)", h("code", {}, view.checksum)],
        ["enclave", view.mrenclave ? h("code", {}, view.mrenclave) : "none: a standard app"],
      );
      break;
    case "dataset":
      pairs.push(["name", view.name], ["fetched from", h("code", {}, view.multiaddr)], ["checksum (sha256)", h("code", {}, view.checksum)]);
      break;
    case "workerpool":
      pairs.push(
        ["description", view.description],
        ["workers' stake", `${view.workerStakeRatio}% of the workerpool price`],
        ["scheduler's share of the reward", `${view.schedulerRewardRatio}%`],
      );
      break;
  }
  const page = await api.book(view.kind, { [view.kind]: view.address });
  const rows = page.orders.map((o) => [
    h("a", { href: `#/order/${view.kind}/${o.orderHash}`, title: o.orderHash }, short(o.orderHash)),
    rlc(o.order[PRICE_FIELD[view.kind]] ?? "0"),
    o.remaining,
    link("account", o.owner),
  ]);
  return [
    h("h2", {}, "Registry record"),
    facts(pairs),
    table(`Open ${view.kind} orders, best first`, ["order", "price", "remaining", "owner"], rows),
  ];
}

export async function orderView(kind: api.Book, hash: string): Promise<HTMLElement> {
  const order = await api.order(kind, hash);
  const fields = Object.entries(order.order).map(([k, v]) => [k, String(v)] as [string, string]);
  return h(
    "section",
    { "aria-labelledby": "order-title" },
    h("h1", { id: "order-title" }, `${kind} order `, h("code", { title: hash }, short(hash))),
    facts([
      ["status", status(order.status)],
      ["remaining", order.remaining],
      ["owner", link("account", order.owner, order.owner)],
      ["published", new Date(order.publishedAt).toLocaleString()],
      ...fields,
    ]),
  );
}

const PRICE_FIELD: Record<api.Book, string> = {
  app: "appprice",
  dataset: "datasetprice",
  workerpool: "workerpoolprice",
  request: "workerpoolmaxprice",
};

const ASSET_FIELD: Record<api.Book, string> = {
  app: "app",
  dataset: "dataset",
  workerpool: "workerpool",
  request: "app",
};

/** The market: the four books (best first, with their depth) and the latest deals. */
export async function marketView(filters: Record<string, string>): Promise<HTMLElement> {
  const pages = await Promise.all(api.BOOKS.map((kind) => api.book(kind, filters).catch(() => null)));
  const latest = await api.deals({ limit: "10" });
  const books = api.BOOKS.map((kind, i) => {
    const page = pages[i];
    const orders = page?.orders ?? [];
    const depth = orders.reduce((sum, o) => sum + BigInt(o.remaining), 0n);
    const best = orders[0] ? rlc(orders[0].order[PRICE_FIELD[kind]] ?? "0") : "none";
    const rows = orders.map((o) => [
      h("a", { href: `#/order/${kind}/${o.orderHash}`, title: o.orderHash }, short(o.orderHash)),
      link("account", o.order[ASSET_FIELD[kind]] ?? ""),
      rlc(o.order[PRICE_FIELD[kind]] ?? "0"),
      o.remaining,
      link("account", o.owner),
    ]);
    return h(
      "section",
      { class: "book", "aria-label": `${kind} orders` },
      h("h2", {}, `${kind} orders`),
      h("p", {}, `best price ${best}, depth ${depth} task(s) in the ${orders.length} best order(s)`),
      table(`${kind} orders, best first`, ["order", ASSET_FIELD[kind], "price", "remaining", "owner"], rows),
    );
  });
  const deals = latest.deals.map((v) => [link("deal", v.dealId), link("account", v.deal.app), link("account", v.deal.workerpool), v.deal.trust, v.deal.botSize]);
  return h(
    "section",
    { "aria-labelledby": "market-title" },
    h("h1", { id: "market-title" }, "Market"),
    filterForm(filters),
    h("div", { class: "books" }, ...books),
    table("Latest deals", ["deal", "app", "workerpool", "trust", "tasks"], deals),
  );
}

function filterForm(filters: Record<string, string>): HTMLElement {
  const field = (name: string, label: string) =>
    h("label", {}, label, h("input", { name, value: filters[name] ?? "", placeholder: name === "category" ? "0" : "0x…", autocomplete: "off" }));
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "filter the books" },
    field("app", "app"),
    field("dataset", "dataset"),
    field("workerpool", "workerpool"),
    field("category", "category"),
    field("tag", "tag"),
    h("button", { type: "submit" }, "Filter"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form as HTMLFormElement);
    const query = new URLSearchParams();
    for (const [name, value] of data) if (String(value).trim()) query.set(name, String(value).trim());
    location.hash = `#/market?${query}`;
  });
  return form;
}

/** The workers of a workerpool's deals, with how their contributions ended and their scores;
 * its members and their bonds; how its tasks ended. */
async function poolWorkers(address: string): Promise<HTMLElement[]> {
  const { workers, members, tasks } = await api.poolWorkers(address);
  const rows = workers.map((w) => [
    link("account", w.worker),
    w.score === undefined ? "none yet" : String(w.score),
    String(w.accurate),
    String(w.faulty),
    String(w.contributions - w.accurate - w.faulty),
  ]);
  const memberRows = members.map((m) => [link("account", m.worker), status(m.status), rlc(m.bond), String(m.since)]);
  return [
    h("p", {}, `Tasks of its deals: ${tasks.completed} completed, ${tasks.failed} failed (claimed past their final deadline).`),
    table("Workers", ["worker", "score", "accurate", "faulty (stake seized)", "pending"], rows),
    table("Members (bonded for its committees)", ["worker", "membership", "bond", "since block"], memberRows),
  ];
}

interface OpenApi {
  info: { title: string; version: string; description?: string };
  paths: Record<string, Record<string, { summary?: string; description?: string; parameters?: { name: string; in: string; required?: boolean; description?: string }[]; responses?: Record<string, { description?: string }> }>>;
}

/** The API's documentation, read from the market's OpenAPI document. */
export async function apiView(): Promise<HTMLElement> {
  const response = await fetch("/openapi.json");
  const doc = (await response.json()) as OpenApi;
  const operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => {
      const params = (op.parameters ?? []).map((p) => [
        h("code", {}, p.name),
        p.in,
        p.required ? "required" : "optional",
        p.description ?? "",
      ]);
      const answers = Object.entries(op.responses ?? {}).map(([code, r]) => [code, r.description ?? ""]);
      return h(
        "section",
        { class: "operation", "aria-label": `${method.toUpperCase()} ${path}` },
        h("h2", {}, h("code", {}, `${method.toUpperCase()} ${path}`)),
        op.summary ? h("p", {}, op.summary) : null,
        op.description ? h("p", { class: "muted" }, op.description) : null,
        params.length ? table("Parameters", ["name", "in", "required", "meaning"], params) : null,
        table("Answers", ["status", "meaning"], answers),
      );
    }),
  );
  return h(
    "section",
    { "aria-labelledby": "api-title" },
    h("h1", { id: "api-title" }, `${doc.info.title} ${doc.info.version}`),
    doc.info.description ? h("p", {}, doc.info.description) : null,
    h("p", {}, "The document itself: ", h("a", { href: "/openapi.json" }, "/openapi.json"), "."),
    ...operations,
  );
}

/** The price per task of an app's or a pool's deals over time: a chart, and the same figures
 * in words for whoever does not see it. */
function priceChart(what: string, deals: api.DealView[], price: (deal: api.Deal) => string): HTMLElement | null {
  if (deals.length === 0) return null;
  const points = deals
    .map((v) => [Number(v.deal.startTime), Number(BigInt(price(v.deal))) / 1e9] as const)
    .sort((a, b) => a[0] - b[0]);
  const xs = points.map(([x]) => x);
  const ys = points.map(([, y]) => y);
  const low = Math.min(...ys);
  const high = Math.max(...ys);
  const summary = `${deals.length} deal(s) of this ${what}: price per task from ${low} to ${high} RLC, latest ${ys[ys.length - 1]} RLC`;
  const holder = h("figure", { class: "chart" }, h("figcaption", {}, `Price per task over time (${what})`));
  const plot = h("div", { role: "img", "aria-label": summary });
  holder.append(plot, h("p", { class: "muted" }, summary));
  // Drawn once the figure is in the page, at its width.
  requestAnimationFrame(() => {
    const width = Math.max(280, Math.min(720, holder.clientWidth || 600));
    new uPlot(
      {
        width,
        height: 220,
        // One deal, or deals of one second: an hour each side, not uPlot's years.
        scales: { x: { time: true, range: (_u, min, max) => (min === max ? [min - 3600, max + 3600] : [min, max]) } },
        axes: [{}, { label: "RLC per task" }],
        series: [{}, { label: "price", stroke: "#0b4fa8", width: 2, points: { show: true } }],
        legend: { show: false },
      },
      [xs, ys],
      plot,
    );
  });
  return holder;
}
