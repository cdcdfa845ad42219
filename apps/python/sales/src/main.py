"""Revenue by a column of a sales CSV, with pandas.

Arguments: [COLUMN] (default: region). Dataset: a CSV with the column, `units` and `price`.
Writes result.json: per group the rows, the units, the revenue and the mean price, groups by
revenue (highest first, ties by name), and computed.json.
"""
import json
import os
import sys

import pandas as pd

column = sys.argv[1] if len(sys.argv) > 1 else "region"
data_in = os.environ["IEXEC_IN"]
out = os.environ["IEXEC_OUT"]
dataset = os.path.join(data_in, os.environ.get("IEXEC_DATASET_FILENAME", "sales.csv"))

sales = pd.read_csv(dataset)
missing = {column, "units", "price"} - set(sales.columns)
if missing:
    print(f"the dataset has no column {sorted(missing)}", file=sys.stderr)
    sys.exit(2)
sales["revenue"] = sales["units"] * sales["price"]
groups = (
    sales.groupby(column)
    .agg(rows=("units", "size"), units=("units", "sum"), revenue=("revenue", "sum"),
         mean_price=("price", "mean"))
    .reset_index()
    .sort_values(["revenue", column], ascending=[False, True])
)
result = [
    {column: str(row[column]), "rows": int(row["rows"]), "units": int(row["units"]),
     "revenue": round(float(row["revenue"]), 2), "mean_price": round(float(row["mean_price"]), 4)}
    for _, row in groups.iterrows()
]
with open(os.path.join(out, "result.json"), "w") as f:
    json.dump({"by": column, "groups": result}, f, indent=1)
with open(os.path.join(out, "computed.json"), "w") as f:
    json.dump({"deterministic-output-path": os.path.join(out, "result.json")}, f)
print(f"{len(result)} groups, top: {result[0][column]} ({result[0]['revenue']})")
