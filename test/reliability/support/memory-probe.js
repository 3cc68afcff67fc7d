// Loaded into a Nudge child process with `node --expose-gc --import memory-probe.js`
// by the soak suite: on request over the IPC channel, it runs a full garbage collection
// and answers with process.memoryUsage(), so the suite can read the heap that is really
// retained. Plain JavaScript: the child runs the compiled build, without tsx.
if (typeof process.send === 'function') {
  process.on('message', (message) => {
    if (!message || message.type !== 'nudge-memory') return;
    if (typeof globalThis.gc === 'function') globalThis.gc();
    const { rss, heapUsed, heapTotal, external } = process.memoryUsage();
    process.send({ type: 'nudge-memory', rss, heapUsed, heapTotal, external });
  });
  // The channel alone must not keep a process alive that would otherwise exit.
  process.channel?.unref();
}
