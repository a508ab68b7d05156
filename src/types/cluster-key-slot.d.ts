// cluster-key-slot ships no types: the one function the broker uses, the Redis Cluster hash slot of a key or channel.
declare module 'cluster-key-slot' {
  function calculateSlot(key: string | Buffer): number;
  export = calculateSlot;
}
