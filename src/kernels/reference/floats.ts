/**
 * The array type the reference kernels' array-level functions accept: the ABI binding passes f32
 * views of linear memory, tests pass f64 arrays to take finite differences without f32 rounding.
 */
export type Floats = Float32Array | Float64Array;
