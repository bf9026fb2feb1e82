/**
 * One attempt's lifecycle through clients that openapi-typescript generated, at
 * its default settings, from the functions' own documents: `generated/attempts.ts`
 * from the attempts function's `/openapi.json`, `generated/batch.ts` from the
 * batch function's `/attempts/batch/openapi.json`. Every body and header it sends
 * or reads is typed by those documents alone, so `tsc` refuses what the
 * contracts do not describe; at run time it checks what the API answers.
 *
 * Usage: PRACTICE_API_URL=… PRACTICE_TOKEN=… PRACTICE_SCENARIO_ID=… node build/lifecycle.js
 * (a trainee's bearer token; `make dev` prints one). Exits 1 on the first mismatch.
 */
import createClient from "openapi-fetch";

import type { paths } from "./generated/attempts.js";
import type { paths as BatchPaths } from "./generated/batch.js";

type Attempt = paths["/attempts/{attemptId}"];
type Submit = paths["/attempts/{attemptId}/submit"];
// The request bodies as the documents describe them, checked here rather than
// only through openapi-fetch: its Writable<> wraps every object schema in an
// intersection, which switches off TypeScript's weak-type check, so any array
// would pass for an all-optional body such as SubmitAttempt.
type SaveBody = Attempt["patch"]["requestBody"]["content"]["application/json"];
type ActivityBody =
  paths["/attempts/{attemptId}/activity"]["post"]["requestBody"]["content"]["application/json"];
type SubmitBody = Submit["post"]["requestBody"]["content"]["application/json"];

/**
 * The header names a response's document declares. openapi-fetch hands back a
 * plain `Response`, and the generated `headers` carry an index signature for any
 * other name; dropping it makes reading an undocumented header a compile error,
 * as reading an undocumented body field is.
 */
type Declared<H> = keyof { [K in keyof H as string extends K ? never : K]: H[K] } & string;

/** The value of header `name`, which `H` (a response's generated headers) must declare. */
function header<H>(response: Response, name: Declared<H>): string | null {
  return response.headers.get(name);
}

class Mismatch extends Error {}

/** Fails the run with `message` unless `condition` holds. */
function expect(condition: boolean, message: string): asserts condition {
  if (!condition) {
    throw new Mismatch(message);
  }
}

/** Fails the run unless `actual` is `expected`; the message names `what`. */
function expectEqual<T>(actual: T, expected: T, what: string): void {
  expect(
    actual === expected,
    `${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`,
  );
}

/** A step's answer: its status, and the body the document promises for it. */
function answered<D>(
  step: string,
  result: { data?: D; error?: unknown; response: Response },
  status: number,
): D {
  const { data, error, response } = result;
  expect(
    response.status === status && data !== undefined,
    `${step}: expected ${status}, got ${response.status} ${JSON.stringify(error ?? data)}`,
  );
  console.log(`ok ${step}: ${response.status}`);
  return data;
}

/** Required configuration from the environment. */
function setting(name: string): string {
  const value = process.env[name];
  expect(value !== undefined && value !== "", `${name} is not set`);
  return value;
}

async function main(): Promise<void> {
  const baseUrl = setting("PRACTICE_API_URL").replace(/\/$/, "");
  const scenarioId = setting("PRACTICE_SCENARIO_ID");
  const headers = { Authorization: `Bearer ${setting("PRACTICE_TOKEN")}` };
  const api = createClient<paths>({ baseUrl, headers });
  const batchApi = createClient<BatchPaths>({ baseUrl, headers });

  // Start: 201, the state, where it lives and its version as an ETag.
  const startResult = await api.POST("/attempts", { body: { scenario_id: scenarioId } });
  const started = answered("start", startResult, 201);
  type Started = paths["/attempts"]["post"]["responses"][201]["headers"];
  expectEqual(started.status, "in_progress", "start status");
  expectEqual(started.scenario_id, scenarioId, "start scenario_id");
  expectEqual(
    header<Started>(startResult.response, "Location"),
    `/attempts/${started.id}`,
    "start Location",
  );
  expectEqual(header<Started>(startResult.response, "ETag"), `"${started.version}"`, "start ETag");
  const attemptId = started.id;
  const path = { attemptId };

  // State: the same version the start answered.
  const stateResult = await api.GET("/attempts/{attemptId}", { params: { path } });
  const state = answered("state", stateResult, 200);
  expectEqual(state.id, attemptId, "state id");
  expectEqual(state.version, started.version, "state version");
  type Stated = Attempt["get"]["responses"][200]["headers"];
  expectEqual(header<Stated>(stateResult.response, "ETag"), `"${state.version}"`, "state ETag");

  // Save: only the fields the client has, against the version it read.
  const answers = { q1: "Discovery first, then the demo." };
  const draft: SaveBody = { expected_version: state.version, answers };
  const saveResult = await api.PATCH("/attempts/{attemptId}", { params: { path }, body: draft });
  const saved = answered("save", saveResult, 200);
  expectEqual(saved.version, state.version + 1, "save version");
  type Saved = Attempt["patch"]["responses"][200]["headers"];
  expectEqual(header<Saved>(saveResult.response, "ETag"), `"${saved.version}"`, "save ETag");

  // Activity: the bare list the endpoint accepts beside {"events": [...]}.
  const events: ActivityBody = [{ event_type: "call_started" }];
  const activityResult = await api.POST("/attempts/{attemptId}/activity", {
    params: { path },
    body: events,
  });
  const logged = answered("activity", activityResult, 201);
  expectEqual(logged.inserted, 1, "activity inserted");

  // Submit with nothing to add: it completes the attempt.
  const nothingToAdd: SubmitBody = {};
  const submitResult = await api.POST("/attempts/{attemptId}/submit", {
    params: { path },
    body: nothingToAdd,
  });
  const submitted = answered("submit", submitResult, 200);
  expectEqual(submitted.status, "completed", "submit status");
  // Activity leaves the version alone; completing moves it once.
  expectEqual(submitted.version, saved.version + 1, "submit version");
  type Submitted = Submit["post"]["responses"][200]["headers"];
  expectEqual(
    header<Submitted>(submitResult.response, "ETag"),
    `"${submitted.version}"`,
    "submit ETag",
  );

  // The batch function sees the same attempt, completed, with the saved answers.
  const batchResult = await batchApi.POST("/attempts/batch", {
    body: { operation: "multiple_states", data: [attemptId] },
  });
  const batch = answered("multiple_states", batchResult, 200);
  expectEqual(batch.operation, "multiple_states", "batch operation");
  expectEqual(batch.summary.succeeded, 1, "batch succeeded");
  expectEqual(batch.summary.failed, 0, "batch failed");
  expectEqual(batch.results.length, 1, "batch results");
  const [outcome] = batch.results;
  expect(
    outcome !== undefined && "state" in outcome,
    `multiple_states: not a state outcome: ${JSON.stringify(outcome)}`,
  );
  expectEqual(outcome.attempt_id, attemptId, "batch attempt_id");
  expectEqual(outcome.status, "found", "batch status");
  const found = outcome.state;
  expect(found != null, "multiple_states: no state");
  expectEqual(found.status, "completed", "batch state status");
  expectEqual(found.version, submitted.version, "batch state version");
  expectEqual(found.answers["q1"], answers.q1, "batch state answers.q1");
  console.log(`lifecycle ok: attempt ${attemptId} completed at version ${found.version}`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Mismatch ? `mismatch: ${error.message}` : error);
  process.exit(1);
});
