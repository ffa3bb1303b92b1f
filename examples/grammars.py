"""A tour of rudder's grammar language, checked against text with no model.

Run it with `python examples/grammars.py`.
"""

from pydantic import BaseModel

import rudder
from rudder import gen, one_or_more, regex, select, zero_or_more


class Person(BaseModel):
    name: str
    age: int


@rudder.guidance(stateless=True)
def number(lm):
    return lm + regex(r"-?[0-9]+")


@rudder.guidance(stateless=True)
def value(lm):
    # Recursive: a grammar that refers to itself, not a Python recursion.
    return lm + select([number(), "[" + value() + zero_or_more("," + value()) + "]"])


def main() -> None:
    answer = "Verdict: " + select(["yes", "no"], name="verdict") + f". Why: {gen('why', stop='.')}."
    print("1.", dict(answer.match("Verdict: yes. Why: it is in France.")))

    record = "Person: " + rudder.json("person", schema=Person)
    found = record.match('Person: {"name": "Ada", "age": 36}')
    print("2.", Person.model_validate_json(found["person"]))

    print("3.", value().match("[1,[2,3],-4]") is not None, value().match("[1,[2,3") is None)

    items = one_or_more("- " + gen("items", stop="\n", list_append=True))
    print("4.", items.match("- flour\n- water\n- salt\n")["items"])

    try:
        regex("[0-9]{3}").match("12x", raise_exceptions=True)
    except rudder.errors.MatchError as error:
        print("5.", error)


if __name__ == "__main__":
    main()
