/**
 * Resolves on the first SIGINT or SIGTERM, so a long-running command can shut down cleanly.
 * A second signal while shutting down exits at once with code 130 (the impatient Ctrl-C).
 */
export function untilSignal(
  onSecond: () => void = () => process.exit(130),
): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let seen = false;
    const handler = (sig: NodeJS.Signals) => {
      if (seen) return onSecond();
      seen = true;
      resolve(sig);
    };
    process.on("SIGINT", handler);
    process.on("SIGTERM", handler);
  });
}
