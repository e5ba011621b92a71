// Where the time goes: V8 CPU profiles of workerd's isolates (the Worker, Miniflare's entry worker and the
// D1 and KV simulators), taken through workerd's inspector while a load runs, and attributed to the
// bundle's modules by the `// src/...` and `// node_modules/...` markers esbuild writes into it.
import fs from "node:fs";

/** Runs `fn` with the V8 profiler on in each target; returns each target's profile. */
export async function profileTargets(inspectorPort, targetIds, fn, samplingMicros = 100) {
  const sessions = await Promise.all(targetIds.map((id) => openSession(`ws://127.0.0.1:${inspectorPort}/${id}`)));
  try {
    for (const session of sessions) {
      await session.send("Profiler.enable");
      await session.send("Profiler.setSamplingInterval", { interval: samplingMicros });
    }
    await Promise.all(sessions.map((session) => session.send("Profiler.start")));
    const result = await fn();
    const profiles = await Promise.all(sessions.map((session) => session.send("Profiler.stop")));
    return { result, profiles: Object.fromEntries(targetIds.map((id, i) => [id, profiles[i].profile])) };
  } finally {
    for (const session of sessions) session.close();
  }
}

function openSession(url) {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    const pending = new Map();
    let nextId = 1;
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(event.data);
      const waiter = pending.get(message.id);
      if (!waiter) return;
      pending.delete(message.id);
      if (message.error) waiter.reject(new Error(`${url}: ${message.error.message}`));
      else waiter.resolve(message.result);
    });
    socket.addEventListener("error", () => reject(new Error(`cannot open inspector session ${url}`)));
    socket.addEventListener("open", () =>
      resolve({
        send(method, params = {}) {
          const id = nextId++;
          socket.send(JSON.stringify({ id, method, params }));
          return new Promise((ok, fail) => pending.set(id, { resolve: ok, reject: fail }));
        },
        close: () => socket.close(),
      }),
    );
  });
}

/** Line number (0-based) → module path, from esbuild's `// path/to/module.ts` comments in a bundle. */
export function moduleMap(bundlePath) {
  const lines = fs.readFileSync(bundlePath, "utf8").split("\n");
  const starts = [];
  lines.forEach((line, index) => {
    const marker = /^\/\/ ((?:src|bench|node_modules)\/\S+)$/.exec(line);
    if (marker) starts.push([index, marker[1]]);
  });
  return (line) => {
    let low = 0;
    let high = starts.length - 1;
    let found = "(bundle prelude)";
    while (low <= high) {
      const mid = (low + high) >> 1;
      if (starts[mid][0] <= line) {
        found = starts[mid][1];
        low = mid + 1;
      } else high = mid - 1;
    }
    return found;
  };
}

/** A short group name for a module path: the package, or the source file. */
function groupOf(modulePath) {
  const pkg = /^node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(modulePath);
  return pkg ? pkg[1] : modulePath;
}

const SPECIAL = new Set(["(root)", "(program)", "(idle)", "(garbage collector)"]);

/**
 * Self time of a profile, in ms: busy JS (by group), garbage collection, and the rest. `bundleModule`
 * maps a line of the Worker's bundle to its module; frames elsewhere are grouped by their function's
 * script (workerd's built-ins, or another isolate's code).
 */
export function summarise(profile, bundleUrlPart, bundleModule) {
  const self = new Map();
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  // A sample stands for the time until the next one (timeDeltas[i + 1]).
  const micros = new Map();
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i + 1] ?? 0;
    micros.set(id, (micros.get(id) ?? 0) + delta);
  });
  const totalMicros = profile.endTime - profile.startTime;
  let busy = 0;
  for (const [id, sampleMicros] of micros) {
    const { callFrame } = byId.get(id);
    const name = callFrame.functionName;
    let group;
    if (SPECIAL.has(name)) group = name;
    else if (bundleModule && callFrame.url.includes(bundleUrlPart)) group = groupOf(bundleModule(callFrame.lineNumber));
    else group = callFrame.url ? `(runtime: ${callFrame.url.replace(/^.*\//, "")})` : `(native: ${name || "anonymous"})`;
    const ms = sampleMicros / 1000;
    self.set(group, (self.get(group) ?? 0) + ms);
    if (name !== "(idle)" && name !== "(root)" && name !== "(program)") busy += ms;
  }
  return { wallMs: totalMicros / 1000, busyMs: busy, self };
}
