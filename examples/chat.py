"""A chat program on the built-in model: roles, a choice, free text and a JSON record,
the same questions asked of several cities, each in a run of its own.

Run it with `python examples/chat.py` (it needs the transformers extra; the model ships
with rudder). In a terminal each run is shown live; `RUDDER_VIEW=terminal` shows it in a
pipe too.
"""

from pydantic import BaseModel

import rudder
from rudder import assistant, gen, json, models, select, system, user


class Guide(BaseModel):
    name: str
    country: str
    landmarks: list[str]


COUNTRIES = ["France", "Italy", "Japan", "Spain", "United Kingdom"]


def ask(lm: models.Model, city: str) -> models.Model:
    with system():
        lm += "You are a concise travel guide."
    with user():
        lm += f"Tell me about {city}."
    with assistant():
        lm += "Country: " + select(COUNTRIES, name="country") + "\n"
        lm += "In short: " + gen("summary", stop="\n", max_tokens=40) + "\n"
        # The built-in model learned compact JSON: (",", ":") instead of json.dumps's default.
        lm += "Record: " + json("record", schema=Guide, max_tokens=160, separators=(",", ":"))
    return lm


def main() -> None:
    model = models.Transformers()
    for city in ("Rome", "London"):
        with rudder.run(city):
            lm = ask(model, city)
        record = Guide.model_validate_json(lm["record"])
        print(f"{city}: {lm['country']} | {lm['summary']} | landmarks: {record.landmarks}")


if __name__ == "__main__":
    main()
