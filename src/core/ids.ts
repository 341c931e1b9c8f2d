import { randomBytes } from "node:crypto";

/** Generates unique ids. Injected so tests can make them predictable. */
export type IdGenerator = () => string;

const ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"; // Crockford base32, lower case

function encode(value: number, length: number): string {
  let out = "";
  for (let i = 0; i < length; i++) {
    out = ALPHABET[value % 32]! + out;
    value = Math.floor(value / 32);
  }
  return out;
}

/**
 * Time-ordered ids: 10 chars of milliseconds, 8 chars fixed per generator (random, so processes
 * do not collide), 6 chars of a counter. Ids sort by creation time, which keeps inserts at the
 * right edge of the primary-key index, and cost no system call per id.
 */
export function timeOrderedIds(now: () => number = Date.now): IdGenerator {
  const bytes = randomBytes(5);
  let node = 0;
  for (const b of bytes) node = node * 256 + b;
  const nodePart = encode(node, 8);
  let lastMs = -1;
  let lastPrefix = "";
  let counter = 0;
  return () => {
    const ms = now();
    if (ms > lastMs) {
      lastMs = ms;
      lastPrefix = encode(ms, 10) + nodePart;
    }
    counter = (counter + 1) % 1_073_741_824; // 32^6
    return lastPrefix + encode(counter, 6);
  };
}
