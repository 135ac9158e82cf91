/* nn_rng.h - a seeded random number generator passed by value/pointer; no global state.
 * xoshiro256** seeded through splitmix64. Not thread-safe: one nn_rng per thread/stream. */
#ifndef NN_RNG_H
#define NN_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct nn_rng {
    uint64_t s[4];
} nn_rng;

/* Seeds rng deterministically from seed (any value, including 0). */
void nn_rng_seed(nn_rng *rng, uint64_t seed);
/* Independent stream `stream` derived from seed: same (seed, stream) -> same sequence. */
void nn_rng_seed_stream(nn_rng *rng, uint64_t seed, uint64_t stream);
uint64_t nn_rng_u64(nn_rng *rng);
/* Uniform float in [0, 1). */
float nn_rng_uniform(nn_rng *rng);
/* Uniform double in [0, 1). */
double nn_rng_uniform_d(nn_rng *rng);
/* Standard normal (Box-Muller, double precision internally). */
float nn_rng_normal(nn_rng *rng);
/* Uniform integer in [0, n); n > 0. Unbiased (rejection). */
size_t nn_rng_below(nn_rng *rng, size_t n);
/* Fisher-Yates shuffle of idx[0..n). */
void nn_rng_shuffle(nn_rng *rng, size_t *idx, size_t n);

#endif
