import fc from 'fast-check';

/**
 * Any JS value fast-check can build, the kinds JSON cannot hold included (BigInt, Map, Set, boxed
 * values, dates, typed and sparse arrays, null-prototype objects, `Object` strings): what the
 * hostile-value property tests feed to every entry point. `stringUnit: 'binary'` adds lone
 * surrogates and every other code unit to the strings.
 */
export function hostileValue(options: { maxDepth?: number; stringUnit?: 'binary' } = {}): fc.Arbitrary<unknown> {
  return fc.anything({
    withBigInt: true,
    withMap: true,
    withSet: true,
    withNullPrototype: true,
    withBoxedValues: true,
    withDate: true,
    withTypedArray: true,
    withSparseArray: true,
    withObjectString: true,
    ...options,
  });
}
