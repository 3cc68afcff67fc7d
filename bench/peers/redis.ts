import { createBunRedisClient } from 'bullmq';
import { RespClient } from './resp-client.js';

export const redisHost = process.env.BENCH_REDIS_HOST ?? '127.0.0.1';
export const redisPort = Number(process.env.BENCH_REDIS_PORT ?? 6379);

/** Which Redis client the BullMQ peer ran on, printed with its figures. */
export let redisDriver = 'none';

/**
 * A connection for a BullMQ Queue or Worker. BullMQ's documentation passes an ioredis
 * instance created with `maxRetriesPerRequest: null` (so blocking commands wait out a
 * reconnect instead of failing); that is used when ioredis is installed. BullMQ 6 no
 * longer ships ioredis and this project does not install it, so otherwise the
 * connection is bench/peers/resp-client.ts behind BullMQ's own adapter for raw clients.
 */
export async function bullConnection(): Promise<object> {
  const specifier = 'ioredis';
  try {
    const mod = (await import(specifier)) as { default: new (options: object) => object };
    redisDriver = 'ioredis';
    return new mod.default({ host: redisHost, port: redisPort, maxRetriesPerRequest: null });
  } catch {
    redisDriver = 'bench RESP client via BullMQ createBunRedisClient';
    return createBunRedisClient(new RespClient(redisHost, redisPort) as never);
  }
}

/** Whether a Redis server answers at the configured address. */
export async function redisReachable(): Promise<boolean> {
  const client = new RespClient(redisHost, redisPort);
  try {
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), 2000));
    await Promise.race([client.connect(), timeout]);
    return (await client.send('PING', [])) === 'PONG';
  } catch {
    return false;
  } finally {
    client.close();
  }
}

/** Redis's used_memory in bytes (the BullMQ peer's jobs live there, outside the Node process). */
export async function redisUsedMemory(client: RespClient): Promise<number> {
  const info = String(await client.send('INFO', ['memory']));
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? 0);
}
