import { afterEach, beforeEach, describe } from "vitest";
import { agentSuite } from "./agents.js";
import { cancelSuite } from "./cancel.js";
import { crashSuite } from "./crash.js";
import { dispatchSuite } from "./dispatch.js";
import { flowSuite } from "./flows.js";
import { createContext, type StoreHarness } from "./fixtures.js";
import { insertSuite } from "./insert.js";
import { laneSuite } from "./lanes.js";
import { maintenanceSuite } from "./maintenance.js";
import { peerSuite } from "./peers.js";
import { prefetchSuite } from "./prefetch.js";
import { readSuite } from "./reads.js";
import { statsSuite } from "./stats.js";
import { tokenSuite } from "./tokens.js";
import { workflowSuite } from "./workflows.js";

export type { StoreHarness, StoreContext } from "./fixtures.js";
export { T0, newTask, nextId } from "./fixtures.js";

/**
 * Declares the store conformance suite (vitest `describe`/`it` blocks) for one store. Every test
 * gets a fresh, empty store from `harness.create()` and destroys it afterwards; tests of
 * behaviour across connections (notifications, concurrent claims) run only when the harness can
 * open a `peer`.
 *
 * Every behaviour documented on the `Store` interface is pinned here; a store change extends this
 * suite, and every store must pass all of it.
 */
export function runStoreConformance(name: string, harness: StoreHarness): void {
  describe(`Store conformance: ${name}`, () => {
    const ctx = createContext(harness);
    beforeEach(() => ctx.setup());
    afterEach(() => ctx.teardown());

    insertSuite(ctx);
    dispatchSuite(ctx);
    prefetchSuite(ctx);
    agentSuite(ctx);
    crashSuite(ctx);
    cancelSuite(ctx);
    readSuite(ctx);
    maintenanceSuite(ctx);
    peerSuite(ctx);
    flowSuite(ctx);
    statsSuite(ctx);
    laneSuite(ctx);
    tokenSuite(ctx);
    workflowSuite(ctx);
  });
}
