import { BlockList, isIP } from 'node:net';

/**
 * APM's `IP::addr ADDR equals NET/BITS`: is `address` inside `cidr` (IPv4 or IPv6)?
 * IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) count as IPv4. Malformed input is false.
 *
 * @example
 * ```ts
 * ipMatches('192.168.255.17', '192.168.255.0/24'); // true
 * ```
 */
export function ipMatches(address: string | undefined | null, cidr: string): boolean {
  if (!address) return false;
  const addr = address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
  const [net = '', bits] = cidr.split('/');
  const family = isIP(net);
  if (family === 0 || isIP(addr) !== family) return false;
  const max = family === 4 ? 32 : 128;
  const prefix = bits === undefined ? max : Number(bits);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) return false;
  const type = family === 4 ? 'ipv4' : 'ipv6';
  const key = `${net}/${prefix}`;
  let list = subnets.get(key);
  if (!list) {
    list = new BlockList();
    list.addSubnet(net, prefix, type);
    // Rules name a handful of networks; the bound only keeps a rule that builds CIDRs from
    // request data from growing the cache.
    if (subnets.size >= 1024) subnets.clear();
    subnets.set(key, list);
  }
  return list.check(addr, type);
}

/** One BlockList per network a rule asked about. */
const subnets = new Map<string, BlockList>();
