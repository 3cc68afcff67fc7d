import { Redis } from 'ioredis';

export const redisHost = process.env.BENCH_REDIS_HOST ?? '127.0.0.1';
export const redisPort = Number(process.env.BENCH_REDIS_PORT ?? 6379);

/**
 * A connection for a BullMQ Queue or Worker, as BullMQ's documentation makes it: an
 * ioredis instance with `maxRetriesPerRequest: null`, so blocking commands wait out a
 * reconnect instead of failing.
 */
export function bullConnection(): Redis {
  return new Redis({ host: redisHost, port: redisPort, maxRetriesPerRequest: null });
}

/** Whether a Redis server answers at the configured address. */
export async function redisReachable(): Promise<boolean> {
  const client = new Redis({ host: redisHost, port: redisPort, lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/** Redis's used_memory in bytes (the BullMQ peer's jobs live there, outside the Node process). */
export async function redisUsedMemory(client: Redis): Promise<number> {
  const info = await client.info('memory');
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? 0);
}
