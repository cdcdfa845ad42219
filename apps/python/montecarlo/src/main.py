"""A Monte-Carlo price of a European call option (and pi, for scale), with numpy.

Arguments: [PATHS] [SEED] (default: 200000 42). No dataset. The random numbers come from
numpy's PCG64 seeded by SEED, so every worker draws the same ones. Writes result.json and
computed.json.
"""
import json
import os
import sys

import numpy as np

paths = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
seed = int(sys.argv[2]) if len(sys.argv) > 2 else 42
out = os.environ["IEXEC_OUT"]

rng = np.random.default_rng(seed)
spot, strike, rate, volatility, years = 100.0, 105.0, 0.03, 0.2, 1.0
z = rng.standard_normal(paths)
final = spot * np.exp((rate - volatility**2 / 2) * years + volatility * np.sqrt(years) * z)
payoff = np.exp(-rate * years) * np.maximum(final - strike, 0.0)
price = float(payoff.mean())
stderr = float(payoff.std(ddof=1) / np.sqrt(paths))
points = rng.random((paths, 2))
pi = 4.0 * float(np.count_nonzero((points**2).sum(axis=1) <= 1.0)) / paths

result = {"paths": paths, "seed": seed, "call_price": round(price, 6),
          "standard_error": round(stderr, 6), "pi": pi}
with open(os.path.join(out, "result.json"), "w") as f:
    json.dump(result, f, indent=1)
with open(os.path.join(out, "computed.json"), "w") as f:
    json.dump({"deterministic-output-path": os.path.join(out, "result.json")}, f)
print(f"call {price:.4f} +- {stderr:.4f}, pi {pi:.5f}")
