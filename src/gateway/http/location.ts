/**
 * The one filter for every `Location` the gateway writes from anything a client could have
 * influenced (the landing URI, a return address): a same-origin path — exactly one leading
 * `/`, not `//` or `/\` (both mean another host to a browser, which reads `\` as `/`), and
 * no control characters or spaces (header injection, and browsers strip tabs and newlines
 * before they parse). Anything else becomes `/`.
 *
 * @example
 * sameOriginPath('/app/?x=1'); // '/app/?x=1'
 * sameOriginPath('//evil.example/'); // '/'
 * sameOriginPath('/\\evil.example'); // '/'
 * sameOriginPath('https://evil.example/'); // '/'
 */
export function sameOriginPath(location: string): string {
  if (location.charCodeAt(0) !== 47 /* / */) return '/';
  const second = location.charCodeAt(1);
  if (second === 47 || second === 92 /* \ */) return '/';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0020\u007f\\]/.test(location)) return '/';
  return location;
}

/**
 * A `Location` from the configuration (a policy's `redirect` step, `logout_redirect`): the
 * operator may send users to another site on purpose, so an absolute http(s) URL passes;
 * everything else goes through `sameOriginPath`.
 *
 * @example
 * configuredLocation('https://portal.example/'); // 'https://portal.example/'
 * configuredLocation('javascript:alert(1)'); // '/'
 */
export function configuredLocation(location: string): string {
  // eslint-disable-next-line no-control-regex
  if (/^https?:\/\/[^/\\\s]/i.test(location) && !/[\u0000-\u0020\u007f]/.test(location)) return location;
  return sameOriginPath(location);
}
