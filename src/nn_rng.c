/* nn_rng.c - xoshiro256** (Blackman & Vigna), seeded through splitmix64. */
#include "nn_rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void nn_rng_seed(nn_rng *rng, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&x);
}

void nn_rng_seed_stream(nn_rng *rng, uint64_t seed, uint64_t stream) {
    uint64_t x = seed ^ (stream * 0xd1342543de82ef95ull + 0x2545f4914f6cdd1dull);
    uint64_t mixed = splitmix64(&x);
    nn_rng_seed(rng, mixed);
}

uint64_t nn_rng_u64(nn_rng *rng) {
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float nn_rng_uniform(nn_rng *rng) { return (float)(nn_rng_u64(rng) >> 40) * 0x1.0p-24f; }

double nn_rng_uniform_d(nn_rng *rng) { return (double)(nn_rng_u64(rng) >> 11) * 0x1.0p-53; }

float nn_rng_normal(nn_rng *rng) {
    double u1 = nn_rng_uniform_d(rng), u2 = nn_rng_uniform_d(rng);
    if (u1 < 1e-300) u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

size_t nn_rng_below(nn_rng *rng, size_t n) {
    uint64_t bound = (uint64_t)n;
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound; /* reject the short last bucket */
    uint64_t r;
    do {
        r = nn_rng_u64(rng);
    } while (r >= limit);
    return (size_t)(r % bound);
}

void nn_rng_shuffle(nn_rng *rng, size_t *idx, size_t n) {
    for (size_t i = n; i > 1; i--) {
        size_t j = nn_rng_below(rng, i);
        size_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}
