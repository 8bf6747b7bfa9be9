import { z } from 'zod/v4';

/**
 * `z.discriminatedUnion` (same runtime, same messages), typed as the `z.ZodUnion` it extends: zod
 * 4.1+ gives `ZodDiscriminatedUnion` a second type parameter that the `zod/v4` of zod 3.25 does not
 * have, so a published declaration naming it would not typecheck in an app on zod 3.25.
 */
export const discriminatedUnion = z.discriminatedUnion as <Options extends readonly [z.core.$ZodTypeDiscriminable, ...z.core.$ZodTypeDiscriminable[]]>(
  discriminator: string,
  options: Options,
) => z.ZodUnion<Options>;
