"""A logistic regression fitted with scikit-learn; the result is its score on held-out rows.

Arguments: [TEST_SHARE] [SEED] (default: 0.25 7). Dataset: a CSV of numeric feature columns
and a last column of 0/1 labels. Writes result.json (the accuracy on the held-out share, the
coefficients, the rows used) and computed.json.
"""
import json
import os
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

test_share = float(sys.argv[1]) if len(sys.argv) > 1 else 0.25
seed = int(sys.argv[2]) if len(sys.argv) > 2 else 7
out = os.environ["IEXEC_OUT"]
dataset = os.path.join(os.environ["IEXEC_IN"], os.environ.get("IEXEC_DATASET_FILENAME", ""))

table = np.loadtxt(dataset, delimiter=",", skiprows=1)
features, labels = table[:, :-1], table[:, -1].astype(int)
train_x, test_x, train_y, test_y = train_test_split(
    features, labels, test_size=test_share, random_state=seed, stratify=labels
)
model = LogisticRegression(solver="lbfgs", max_iter=200).fit(train_x, train_y)
score = float(model.score(test_x, test_y))
result = {
    "score": round(score, 6),
    "coefficients": [round(float(c), 6) for c in model.coef_[0]],
    "intercept": round(float(model.intercept_[0]), 6),
    "train_rows": int(len(train_y)),
    "test_rows": int(len(test_y)),
}
with open(os.path.join(out, "result.json"), "w") as f:
    json.dump(result, f, indent=1)
with open(os.path.join(out, "computed.json"), "w") as f:
    json.dump({"deterministic-output-path": os.path.join(out, "result.json")}, f)
print(f"accuracy {score:.4f} on {len(test_y)} held-out rows")
