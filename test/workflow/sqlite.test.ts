import { createTestEngine } from "../../src/testing/index.js";
import { workflowSuite } from "./suite.js";

workflowSuite((opts) => createTestEngine(opts));
