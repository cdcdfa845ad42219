// The market's API, as the explorer reads it: every view is built from these calls, none
// reads the chain.

export interface OrderView {
  orderHash: string;
  kind: string;
  status: string;
  remaining: string;
  owner: string;
  publishedAt: number;
  order: Record<string, string>;
}

export interface OrderPage {
  orders: OrderView[];
  count: number;
  nextCursor?: string;
}

export interface Deal {
  app: string;
  appOwner: string;
  appPrice: string;
  dataset: string;
  datasetOwner: string;
  datasetPrice: string;
  workerpool: string;
  scheduler: string;
  workerpoolPrice: string;
  requester: string;
  beneficiary: string;
  sponsor: string;
  tag: string;
  category: string;
  trust: string;
  startTime: string;
  botFirst: string;
  botSize: string;
  workerStake: string;
}

export interface DealView {
  dealId: string;
  deal: Deal;
  params: string;
  volume: string;
  appHash: string;
  datasetHash: string;
  workerpoolHash: string;
  requestHash: string;
  block: number;
  transaction: string;
}

export interface DealPage {
  deals: DealView[];
  count: number;
  nextCursor?: string;
}

export interface IndexedTask {
  taskId: string;
  index: string;
  deal: DealView;
}

export interface TaskEvent {
  kind: string;
  block: number;
  transaction: string;
  logIndex: number;
  account?: string;
  value?: string;
  results?: string;
}

export interface TaskEvents {
  taskId: string;
  events: TaskEvent[];
}

export interface AccountEvent {
  kind: string;
  block: number;
  transaction: string;
  logIndex: number;
  taskId?: string;
  workerpool?: string;
  value?: string;
}

export interface AccountEvents {
  account: string;
  events: AccountEvent[];
  nextBefore?: string;
}

export interface Scores {
  account: string;
  scores: { block: number; score: number }[];
}

export interface PoolWorkers {
  workerpool: string;
  workers: { worker: string; contributions: number; accurate: number; faulty: number; score?: number }[];
  members: { worker: string; status: string; since: number; bond: string }[];
  tasks: { completed: number; failed: number };
}

/** A refusal of the market, with its stable code. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

async function get<T>(path: string): Promise<T> {
  const response = await fetch(path, { headers: { accept: "application/json" } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new ApiError(response.status, body.code ?? "error", body.error ?? response.statusText);
  }
  return body as T;
}

export const BOOKS = ["app", "dataset", "workerpool", "request"] as const;
export type Book = (typeof BOOKS)[number];

/** The best orders of a book (best first), filtered by the explorer's filters: `app`,
 * `dataset`, `workerpool` (the asset of its own book; elsewhere, orders that accept it),
 * `category` (workerpool and request books) and `tag` (orders offering or needing at least
 * these features). */
export function book(kind: Book, filters: Record<string, string>): Promise<OrderPage> {
  const query = new URLSearchParams({ limit: "20" });
  const roles = ["app", "dataset", "workerpool", "requester"];
  for (const role of roles) {
    const value = filters[role];
    if (value) query.set(role, value);
    // A restriction not filtered: every order, restricted or not. The request book's
    // dataset and requester are the order's own, not restrictions.
    else if (role !== kind && !(kind === "request" && role !== "workerpool")) query.set(role, "any");
  }
  if (filters.category && (kind === "workerpool" || kind === "request")) {
    query.set("category", filters.category);
  }
  if (filters.tag) query.set("minTag", filters.tag);
  return get(`/${kind}orders?${query}`);
}

export const order = (kind: Book, hash: string) => get<OrderView>(`/${kind}orders/${hash}`);
export const deals = (query: Record<string, string>) =>
  get<DealPage>(`/deals?${new URLSearchParams(query)}`);
export const deal = (id: string) => get<DealView>(`/deals/${id}`);
export const task = (id: string) => get<IndexedTask>(`/tasks/${id}`);
export const taskEvents = (id: string) => get<TaskEvents>(`/tasks/${id}/events`);
export const poolWorkers = (address: string) => get<PoolWorkers>(`/workerpools/${address}/workers`);
export const scores = (address: string, limit = 20) =>
  get<Scores>(`/accounts/${address}/scores?limit=${limit}`);
export const accountEvents = (address: string, before?: string) =>
  get<AccountEvents>(
    `/accounts/${address}/events?${new URLSearchParams(before ? { limit: "100", before } : { limit: "100" })}`,
  );

export interface DealTasks {
  dealId: string;
  tasks: { taskId: string; index: string }[];
}

/** The tasks of a deal the market indexed (its first ones), in index order. */
export const dealTasks = (id: string) => get<DealTasks>(`/deals/${id}/tasks`);

/** An account's free and frozen balances (nRLC), read by the market at its confirmed head. */
export interface AccountFunds {
  account: string;
  block: number;
  balance: string;
  frozen: string;
}

export const funds = (address: string) => get<AccountFunds>(`/accounts/${address}`);

/** What an address is in the registries; byte strings its owner chose come as text. */
export type AssetView = {
  address: string;
  block: number;
  owner: string;
} & (
  | { kind: "app"; name: string; appType: string; multiaddr: string; checksum: string; mrenclave: string }
  | { kind: "dataset"; name: string; multiaddr: string; checksum: string }
  | { kind: "workerpool"; description: string; workerStakeRatio: number; schedulerRewardRatio: number }
);

/** The asset at `address`, or `null` when no registry knows it. */
export async function asset(address: string): Promise<AssetView | null> {
  try {
    return await get<AssetView>(`/assets/${address}`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  }
}
