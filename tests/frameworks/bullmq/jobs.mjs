// BullMQ producer and workers for qctl's tests; tests/frameworks/fixtures.py runs this with node.
//
//   node jobs.mjs add QUEUE OK FAILING ERROR_NAME MESSAGE   queue.addBulk: OK jobs that succeed, FAILING that fail
//   node jobs.mjs work QUEUE FAIL CONCURRENCY               a Worker until the queue is drained
//   node jobs.mjs bulk-failed QUEUE N ERROR_NAME MESSAGE    addBulk N failing jobs + a fast failing Worker
//   node jobs.mjs retry QUEUE                               queue.retryJobs({state: 'failed'}) until none is left
//   node jobs.mjs pause QUEUE | resume QUEUE                queue.pause() / queue.resume()
//
// FAIL=1 makes the failing jobs throw `Error(MESSAGE)` named ERROR_NAME (so `bull:<q>:failed` and the job hashes
// hold a real failedReason and stacktrace); FAIL=0 lets the same jobs complete, which is how tests check that jobs
// qctl retried really run.  Every command prints one JSON line last.  REDIS_URL picks the Redis (db 6 by default).
import { Queue, Worker } from "bullmq";

const [command, queueName, ...args] = process.argv.slice(2);
const url = new URL(process.env.REDIS_URL ?? "redis://127.0.0.1:16379/6");
const connection = {
  host: url.hostname,
  port: Number(url.port || 6379),
  db: Number(url.pathname.slice(1) || 0),
  maxRetriesPerRequest: null,
};
const CHUNK = 1000;

function jobs(ok, failing, errorName, message) {
  const fail = { fail: true, errorName, message };
  return [
    ...Array.from({ length: ok }, (_, i) => ({ name: "qctl-ok", data: { fail: false, i } })),
    ...Array.from({ length: failing }, (_, i) => ({ name: "qctl-fail", data: { ...fail, i } })),
  ];
}

async function add(queue, list) {
  for (let start = 0; start < list.length; start += CHUNK) {
    await queue.addBulk(list.slice(start, start + CHUNK));
  }
}

function processor(failing) {
  return async (job) => {
    if (failing && job.data.fail) {
      const error = new Error(job.data.message);
      error.name = job.data.errorName;
      throw error;
    }
    return "ok";
  };
}

// Run a Worker until the queue has nothing waiting and nothing active; report what it did.
async function work(queue, failing, concurrency) {
  const started = Date.now();
  const counts = { completed: 0, failed: 0 };
  const worker = new Worker(queueName, processor(failing), { connection, concurrency, autorun: false });
  worker.on("completed", () => counts.completed++);
  worker.on("failed", () => counts.failed++);
  const drained = new Promise((resolve) => worker.on("drained", resolve));
  worker.run();
  for (;;) {
    const waiting = await queue.getJobCounts("waiting", "active", "prioritized", "delayed");
    if (waiting.waiting + waiting.active + waiting.prioritized === 0) break;
    await Promise.race([drained, new Promise((resolve) => setTimeout(resolve, 200))]);
  }
  await worker.close();
  return { ...counts, seconds: (Date.now() - started) / 1000 };
}

async function main() {
  const queue = new Queue(queueName, { connection });
  let result;
  if (command === "add") {
    const [ok, failing, errorName, message] = args;
    await add(queue, jobs(Number(ok), Number(failing), errorName, message));
    result = { added: Number(ok) + Number(failing) };
  } else if (command === "work") {
    result = await work(queue, args[0] === "1", Number(args[1] ?? 1));
  } else if (command === "bulk-failed") {
    const [n, errorName, message] = args;
    const started = Date.now();
    await add(queue, jobs(0, Number(n), errorName, message));
    const added = (Date.now() - started) / 1000;
    const run = await work(queue, true, 200);
    result = { ...run, added_seconds: added, seconds: (Date.now() - started) / 1000 };
  } else if (command === "retry") {
    const started = Date.now();
    const before = await queue.getJobCountByTypes("failed");
    while ((await queue.getJobCountByTypes("failed")) > 0) {
      await queue.retryJobs({ state: "failed", count: CHUNK });
    }
    result = { retried: before, seconds: (Date.now() - started) / 1000 };
  } else if (command === "pause") {
    await queue.pause();
    result = { paused: true };
  } else if (command === "resume") {
    await queue.resume();
    result = { paused: false };
  } else {
    throw new Error(`unknown command ${command}`);
  }
  await queue.close();
  console.log(JSON.stringify(result));
}

await main();
