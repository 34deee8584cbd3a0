import QRCode from 'qrcode';

/**
 * What the enrolment page shows of an `otpauth://` URI: the URI as a QR code (an SVG made here,
 * put inline in the page: no script and no image request, so the page's CSP stays as it is)
 * and its secret in groups of four, to type by hand.
 *
 * @example
 * ```ts
 * const { svg, key } = await enrolView('otpauth://totp/sg:alice?secret=JBSWY3DPEHPK3PXP');
 * // key: 'JBSW Y3DP EHPK 3PXP'
 * ```
 */
export async function enrolView(otpauth: string): Promise<{ svg: string; key: string }> {
  const svg = await QRCode.toString(otpauth, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
  return { svg, key: groupKey(new URL(otpauth).searchParams.get('secret') ?? '') };
}

/** A base32 secret in groups of four characters, for reading aloud or typing. */
export function groupKey(secret: string): string {
  return (secret.match(/.{1,4}/g) ?? []).join(' ');
}
