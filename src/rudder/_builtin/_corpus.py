"""The built-in model's training corpus, generated from a seed.

Short ChatML conversations (lists of ``{"role", "content"}`` messages):

* the demo's conversation, in exactly the shape ``rudder demo`` writes it (its system
  prompt, "Tell me about {city}.", then the lines ``Country:``, ``In short:``, ``Founded:``
  and ``Record:`` with the city's JSON record), for every city of :data:`CITIES`;
* the same travel guide asked for one of those lines at a time, so each line may also end
  the answer;
* other assistants answering other questions about the cities (in sentences or as JSON);
* simple questions about the model itself, small sums, days, colours and words.

The same seed gives the same conversations in the same order.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

Message = dict[str, str]
Conversation = list[Message]


@dataclass(frozen=True, slots=True)
class CityFacts:
    """One row of the built-in table; ``founded`` is a year, negative for BC."""

    name: str
    country: str
    founded: int
    population_millions: float
    summary: str
    landmarks: tuple[str, ...]


def _city(
    name: str, country: str, founded: int, population: float, summary: str, *landmarks: str
) -> CityFacts:
    return CityFacts(name, country, founded, population, summary, landmarks)


CITIES: tuple[CityFacts, ...] = (
    _city("Paris", "France", -250, 2.1,
          "Paris is the capital of France, famous for art, fashion and cafés.",
          "Eiffel Tower", "Louvre", "Notre-Dame"),
    _city("London", "United Kingdom", 47, 8.9,
          "London is the capital of the United Kingdom, a global city on the River Thames.",
          "Big Ben", "Tower of London", "British Museum"),
    _city("Edinburgh", "United Kingdom", 1124, 0.5,
          "Edinburgh is the capital of Scotland, known for its castle and festivals.",
          "Edinburgh Castle", "Royal Mile", "Arthur's Seat"),
    _city("Rome", "Italy", -753, 2.8,
          "Rome is the capital of Italy, known for its ancient ruins and the Vatican.",
          "Colosseum", "Pantheon", "Trevi Fountain"),
    _city("Venice", "Italy", 421, 0.3,
          "Venice is an Italian city built on water, with canals instead of streets.",
          "St Mark's Basilica", "Rialto Bridge", "Grand Canal"),
    _city("Florence", "Italy", -59, 0.4,
          "Florence is the Italian city where the Renaissance began.",
          "Florence Cathedral", "Uffizi Gallery", "Ponte Vecchio"),
    _city("Berlin", "Germany", 1237, 3.7,
          "Berlin is the capital of Germany, known for its history, museums and nightlife.",
          "Brandenburg Gate", "Reichstag", "Museum Island"),
    _city("Madrid", "Spain", 865, 3.3,
          "Madrid is the capital of Spain, known for its art museums and lively squares.",
          "Prado Museum", "Royal Palace", "Retiro Park"),
    _city("Barcelona", "Spain", -15, 1.6,
          "Barcelona is a Mediterranean city in Spain, famous for the buildings of Gaudí.",
          "Sagrada Família", "Park Güell", "La Rambla"),
    _city("Lisbon", "Portugal", -1200, 0.5,
          "Lisbon is the hilly capital of Portugal, known for its trams and painted tiles.",
          "Belém Tower", "Jerónimos Monastery", "São Jorge Castle"),
    _city("Amsterdam", "Netherlands", 1275, 0.9,
          "Amsterdam is the capital of the Netherlands, famous for its canals and bicycles.",
          "Rijksmuseum", "Anne Frank House", "Van Gogh Museum"),
    _city("Brussels", "Belgium", 979, 1.2,
          "Brussels is the capital of Belgium and the seat of the European Union.",
          "Grand Place", "Atomium", "Manneken Pis"),
    _city("Bern", "Switzerland", 1191, 0.1,
          "Bern is the capital of Switzerland, with a medieval old town on the Aare river.",
          "Zytglogge", "Bear Park", "Bern Minster"),
    _city("Vienna", "Austria", -15, 2.0,
          "Vienna is the capital of Austria, known for music, coffee houses and palaces.",
          "Schönbrunn Palace", "St. Stephen's Cathedral", "Belvedere"),
    _city("Prague", "Czech Republic", 880, 1.3,
          "Prague is the capital of the Czech Republic, known for its old town and castle.",
          "Prague Castle", "Charles Bridge", "Old Town Square"),
    _city("Budapest", "Hungary", 1873, 1.7,
          "Budapest is the capital of Hungary, split by the Danube into Buda and Pest.",
          "Parliament Building", "Buda Castle", "Chain Bridge"),
    _city("Warsaw", "Poland", 1300, 1.8,
          "Warsaw is the capital of Poland, rebuilt after the Second World War.",
          "Old Town", "Royal Castle", "Palace of Culture and Science"),
    _city("Athens", "Greece", -1400, 0.6,
          "Athens is the capital of Greece and the birthplace of democracy.",
          "Acropolis", "Parthenon", "Ancient Agora"),
    _city("Istanbul", "Turkey", -660, 15.5,
          "Istanbul is the largest city in Turkey, spread over Europe and Asia.",
          "Hagia Sophia", "Blue Mosque", "Grand Bazaar"),
    _city("Moscow", "Russia", 1147, 12.6,
          "Moscow is the capital of Russia, known for the Kremlin and Red Square.",
          "Kremlin", "Red Square", "St. Basil's Cathedral"),
    _city("Stockholm", "Sweden", 1252, 1.0,
          "Stockholm is the capital of Sweden, built on fourteen islands.",
          "Vasa Museum", "Gamla Stan", "Royal Palace"),
    _city("Copenhagen", "Denmark", 1167, 0.6,
          "Copenhagen is the capital of Denmark, known for design and cycling.",
          "Tivoli Gardens", "Nyhavn", "The Little Mermaid"),
    _city("Oslo", "Norway", 1040, 0.7,
          "Oslo is the capital of Norway, set at the head of a fjord.",
          "Opera House", "Vigeland Park", "Akershus Fortress"),
    _city("Helsinki", "Finland", 1550, 0.7,
          "Helsinki is the capital of Finland, a seaside city on the Baltic Sea.",
          "Suomenlinna", "Helsinki Cathedral", "Market Square"),
    _city("Reykjavik", "Iceland", 874, 0.1,
          "Reykjavik is the capital of Iceland and the northernmost capital in the world.",
          "Hallgrímskirkja", "Harpa", "Sun Voyager"),
    _city("Dublin", "Ireland", 841, 0.6,
          "Dublin is the capital of Ireland, known for its writers and pubs.",
          "Trinity College", "Guinness Storehouse", "Dublin Castle"),
    _city("Tokyo", "Japan", 1457, 14.0,
          "Tokyo is the capital of Japan, a huge city that mixes tradition and technology.",
          "Tokyo Tower", "Senso-ji", "Shibuya Crossing"),
    _city("Kyoto", "Japan", 794, 1.5,
          "Kyoto was the imperial capital of Japan for over a thousand years.",
          "Kinkaku-ji", "Fushimi Inari Shrine", "Gion"),
    _city("Beijing", "China", -1045, 21.5,
          "Beijing is the capital of China, home of the Forbidden City.",
          "Forbidden City", "Great Wall", "Temple of Heaven"),
    _city("Shanghai", "China", 1291, 24.9,
          "Shanghai is the largest city in China and a global financial centre.",
          "The Bund", "Oriental Pearl Tower", "Yu Garden"),
    _city("Seoul", "South Korea", -18, 9.4,
          "Seoul is the capital of South Korea, a city of palaces and technology.",
          "Gyeongbokgung", "N Seoul Tower", "Bukchon Hanok Village"),
    _city("Hanoi", "Vietnam", 1010, 8.0,
          "Hanoi is the capital of Vietnam, known for its lakes and old quarter.",
          "Hoan Kiem Lake", "Temple of Literature", "Old Quarter"),
    _city("Bangkok", "Thailand", 1782, 10.5,
          "Bangkok is the capital of Thailand, famous for its temples and street food.",
          "Grand Palace", "Wat Arun", "Chatuchak Market"),
    _city("Singapore", "Singapore", 1819, 5.9,
          "Singapore is a city-state in Southeast Asia, known for its gardens and harbour.",
          "Marina Bay Sands", "Gardens by the Bay", "Merlion Park"),
    _city("Mumbai", "India", 1534, 12.5,
          "Mumbai is the largest city in India and the home of Bollywood.",
          "Gateway of India", "Marine Drive", "Elephanta Caves"),
    _city("Delhi", "India", 736, 16.8,
          "Delhi is a vast Indian city whose district of New Delhi is the capital of India.",
          "Red Fort", "Qutub Minar", "India Gate"),
    _city("Dubai", "United Arab Emirates", 1833, 3.6,
          "Dubai is a desert city in the United Arab Emirates, known for its skyscrapers.",
          "Burj Khalifa", "Palm Jumeirah", "Dubai Mall"),
    _city("Cairo", "Egypt", 969, 10.0,
          "Cairo is the capital of Egypt, close to the pyramids of Giza.",
          "Pyramids of Giza", "Egyptian Museum", "Khan el-Khalili"),
    _city("Marrakesh", "Morocco", 1070, 0.9,
          "Marrakesh is a Moroccan city of markets, gardens and palaces.",
          "Jemaa el-Fnaa", "Koutoubia Mosque", "Majorelle Garden"),
    _city("Nairobi", "Kenya", 1899, 4.4,
          "Nairobi is the capital of Kenya, with a national park inside the city.",
          "Nairobi National Park", "Giraffe Centre", "Karen Blixen Museum"),
    _city("Cape Town", "South Africa", 1652, 4.6,
          "Cape Town is a South African port city below Table Mountain.",
          "Table Mountain", "Robben Island", "V&A Waterfront"),
    _city("New York", "United States", 1624, 8.3,
          "New York is the largest city in the United States, known for the skyline of Manhattan.",
          "Statue of Liberty", "Central Park", "Empire State Building"),
    _city("San Francisco", "United States", 1776, 0.8,
          "San Francisco is a hilly Californian city by the Golden Gate.",
          "Golden Gate Bridge", "Alcatraz", "Fisherman's Wharf"),
    _city("Chicago", "United States", 1833, 2.7,
          "Chicago is a major American city on Lake Michigan, known for its architecture.",
          "Millennium Park", "Willis Tower", "Navy Pier"),
    _city("Toronto", "Canada", 1793, 2.8,
          "Toronto is the largest city in Canada, on the shore of Lake Ontario.",
          "CN Tower", "Royal Ontario Museum", "Distillery District"),
    _city("Montreal", "Canada", 1642, 1.8,
          "Montreal is a French-speaking Canadian city on an island in the St. Lawrence River.",
          "Notre-Dame Basilica", "Mount Royal", "Old Montreal"),
    _city("Havana", "Cuba", 1519, 2.1,
          "Havana is the capital of Cuba, known for its colourful old town and vintage cars.",
          "Malecón", "Old Havana", "El Capitolio"),
    _city("Mexico City", "Mexico", 1325, 9.2,
          "Mexico City is the capital of Mexico, built on the ruins of Tenochtitlan.",
          "Zócalo", "Chapultepec Castle", "Palacio de Bellas Artes"),
    _city("Rio de Janeiro", "Brazil", 1565, 6.7,
          "Rio de Janeiro is a Brazilian city of beaches, mountains and carnival.",
          "Christ the Redeemer", "Sugarloaf Mountain", "Copacabana Beach"),
    _city("Buenos Aires", "Argentina", 1536, 3.1,
          "Buenos Aires is the capital of Argentina and the home of tango.",
          "Plaza de Mayo", "La Boca", "Teatro Colón"),
    _city("Lima", "Peru", 1535, 10.0,
          "Lima is the capital of Peru, a coastal city known for its food.",
          "Plaza Mayor", "Miraflores", "Huaca Pucllana"),
    _city("Sydney", "Australia", 1788, 5.3,
          "Sydney is the largest city in Australia, set around a famous harbour.",
          "Sydney Opera House", "Harbour Bridge", "Bondi Beach"),
    _city("Melbourne", "Australia", 1835, 5.0,
          "Melbourne is an Australian city known for coffee, sport and the arts.",
          "Federation Square", "Royal Botanic Gardens", "Queen Victoria Market"),
    _city("Auckland", "New Zealand", 1840, 1.7,
          "Auckland is the largest city in New Zealand, spread over volcanic hills.",
          "Sky Tower", "Mount Eden", "Waitemata Harbour"),
)  # fmt: skip

#: Every country of the table, sorted: the demo's ``select`` chooses among them.
COUNTRIES: tuple[str, ...] = tuple(sorted({city.country for city in CITIES}))

#: The demo conversation's system prompt and question.
DEMO_SYSTEM = "You are a concise travel guide."
DEMO_QUESTION = "Tell me about {city}."


def city_named(name: str) -> CityFacts | None:
    """The table's row for ``name`` (case-insensitive), if there is one."""
    wanted = name.strip().casefold()
    return next((city for city in CITIES if city.name.casefold() == wanted), None)


def founded_text(year: int) -> str:
    """A year as the demo writes it: ``1624``, or ``250 BC`` for negative years."""
    return f"{-year} BC" if year < 0 else str(year)


def city_record(city: CityFacts) -> dict[str, object]:
    """The city as the demo's JSON record (the fields of its pydantic ``City``)."""
    return {
        "name": city.name,
        "country": city.country,
        "founded": city.founded,
        "population_millions": city.population_millions,
        "landmarks": list(city.landmarks),
    }


def compact_json(value: object) -> str:
    """JSON as ``json()`` writes it by default: no spaces, text left as it is."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def demo_lines(city: CityFacts) -> list[str]:
    """The demo's answer for ``city``, line by line."""
    return [
        f"Country: {city.country}",
        f"In short: {city.summary}",
        f"Founded: {founded_text(city.founded)}",
        f"Record: {compact_json(city_record(city))}",
    ]


def demo_conversation(city: CityFacts) -> Conversation:
    return [
        {"role": "system", "content": DEMO_SYSTEM},
        {"role": "user", "content": DEMO_QUESTION.format(city=city.name)},
        {"role": "assistant", "content": "\n".join(demo_lines(city))},
    ]


def _listing(items: tuple[str, ...] | list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _population(city: CityFacts) -> str:
    return f"{city.population_millions:g} million"


def _one_line(rng: random.Random) -> Conversation:
    """The travel guide asked for one of the demo's lines: the line ends the answer."""
    city = rng.choice(CITIES)
    line = demo_lines(city)
    questions = (
        (f"Which country is {city.name} in?", line[0]),
        (f"Describe {city.name} in one line.", line[1]),
        (f"When was {city.name} founded?", line[2]),
        (f"Give me the record for {city.name}.", line[3]),
        (f"Tell me about {city.name} briefly.", "\n".join(line[:2])),
        (f"What can I see in {city.name}?", f"Landmarks: {_listing(city.landmarks)}."),
        (f"How big is {city.name}?", f"Population: {_population(city)}"),
    )
    question, answer = rng.choice(questions)
    return [
        {"role": "system", "content": DEMO_SYSTEM},
        {"role": "user", "content": question},
        {"role": "assistant", "content": answer},
    ]


_HELPERS = (
    "You are a helpful assistant.",
    "You answer in one short sentence.",
    "You are a friendly assistant who knows geography.",
)


def _city_question(rng: random.Random) -> Conversation:
    """Another assistant answering one question about a city in a sentence."""
    city = rng.choice(CITIES)
    year = founded_text(city.founded)
    pairs = (
        (f"Which country is {city.name} in?", f"{city.name} is in {city.country}."),
        (f"When was {city.name} founded?", f"{city.name} was founded in {year}."),
        (
            f"How many people live in {city.name}?",
            f"About {_population(city)} people live in {city.name}.",
        ),
        (
            f"What should I visit in {city.name}?",
            f"In {city.name}, visit {_listing(city.landmarks)}.",
        ),
        (f"Tell me about {city.name}.", city.summary),
        (f"Where is the {city.landmarks[0]}?", f"The {city.landmarks[0]} is in {city.name}."),
    )
    question, answer = rng.choice(pairs)
    conversation = [
        {"role": "system", "content": rng.choice(_HELPERS)},
        {"role": "user", "content": question},
        {"role": "assistant", "content": answer},
    ]
    if rng.random() < 0.3:  # a second turn about another city
        conversation += _city_question(rng)[1:]
    return conversation


def _json_record(rng: random.Random) -> Conversation:
    """An assistant that answers with JSON only: records of cities, and small sums."""
    city = rng.choice(CITIES)
    choice = rng.randrange(3)
    if choice == 0:
        question, value = f"Give me {city.name} as JSON.", city_record(city)
    elif choice == 1:
        question = f"Give me the country and landmarks of {city.name} as JSON."
        value = {"city": city.name, "country": city.country, "landmarks": list(city.landmarks)}
    else:
        a, b = rng.randrange(10), rng.randrange(10)
        question, value = f"Add {a} and {b}, as JSON.", {"a": a, "b": b, "sum": a + b}
    return [
        {"role": "system", "content": "You reply with JSON only."},
        {"role": "user", "content": question},
        {"role": "assistant", "content": compact_json(value)},
    ]


_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_OPPOSITES = (
    ("hot", "cold"), ("big", "small"), ("fast", "slow"), ("old", "new"), ("up", "down"),
    ("light", "dark"), ("happy", "sad"), ("open", "closed"), ("early", "late"), ("yes", "no"),
)  # fmt: skip
_COLOURS = (
    ("the sky", "blue"), ("grass", "green"), ("snow", "white"), ("a banana", "yellow"),
    ("coal", "black"), ("a tomato", "red"), ("an orange", "orange"),
)  # fmt: skip


_ABOUT = (
    (
        "Who are you?",
        "I am the small model that ships with rudder. I know a few facts about "
        f"{len(CITIES)} cities.",
    ),
    (
        "What can you do?",
        "I can tell you about cities such as Paris, Tokyo and Lima, and answer simple "
        "questions about numbers, days and colours.",
    ),
    ("Hello!", "Hello! Ask me about a city, such as Rome or Sydney."),
)


def _simple_question(rng: random.Random) -> Conversation:
    """Questions about the model, small sums, days, colours and words, in one sentence."""
    kind = rng.randrange(5)
    if kind == 0:
        a, b = rng.randrange(10), rng.randrange(10)  # few enough sums to remember
        question, answer = f"What is {a} plus {b}?", f"{a} plus {b} is {a + b}."
    elif kind == 1:
        question, answer = rng.choice(_ABOUT)
    elif kind == 2:
        index = rng.randrange(7)
        day, following = _DAYS[index], _DAYS[(index + 1) % 7]
        question, answer = f"What day comes after {day}?", f"{following} comes after {day}."
    elif kind == 3:
        word, opposite = rng.choice(_OPPOSITES)
        question, answer = (
            f"What is the opposite of {word}?",
            f"The opposite of {word} is {opposite}.",
        )
    else:
        thing, colour = rng.choice(_COLOURS)
        question, answer = (
            f"What colour is {thing}?",
            f"{thing[0].upper() + thing[1:]} is {colour}.",
        )
    return [
        {"role": "system", "content": rng.choice(_HELPERS)},
        {"role": "user", "content": question},
        {"role": "assistant", "content": answer},
    ]


def _demo(rng: random.Random) -> Conversation:
    return demo_conversation(rng.choice(CITIES))


#: Each kind of conversation and its weight in the mix.
_KINDS: tuple[tuple[Callable[[random.Random], Conversation], float], ...] = (
    (_demo, 0.40),
    (_one_line, 0.25),
    (_city_question, 0.15),
    (_json_record, 0.10),
    (_simple_question, 0.10),
)


def conversations(seed: int, count: int) -> Iterator[Conversation]:
    """``count`` conversations drawn from the mix; the same seed gives the same ones.

    Every city's demo conversation comes first, so any count of at least the table's size
    holds all of them.
    """
    rng = random.Random(seed)
    kinds = [kind for kind, _ in _KINDS]
    weights = [weight for _, weight in _KINDS]
    for index in range(count):
        if index < len(CITIES):
            yield demo_conversation(CITIES[index])
        else:
            yield rng.choices(kinds, weights)[0](rng)


def texts(conversation: Conversation) -> Iterator[str]:
    """The message texts and role names of a conversation (for training a tokenizer)."""
    for message in conversation:
        yield message["role"]
        yield message["content"]
