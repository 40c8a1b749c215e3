"""Generated container names: ``adjective_surname`` as Docker makes them."""

from __future__ import annotations

import os

_LEFT = (
    "admiring adoring affectionate agitated amazing angry awesome blissful bold boring brave "
    "busy charming clever cool compassionate competent condescending confident cranky crazy "
    "dazzling determined distracted dreamy eager ecstatic elastic elated elegant eloquent epic "
    "fervent festive flamboyant focused friendly frosty gallant gifted goofy gracious happy "
    "hardcore heuristic hopeful hungry infallible inspiring jolly jovial keen kind laughing "
    "loving lucid magical modest musing mystifying naughty nervous nice nifty nostalgic "
    "objective optimistic peaceful pedantic pensive practical priceless quirky quizzical "
    "relaxed reverent romantic sad serene sharp silly sleepy stoic strange stupefied suspicious "
    "sweet tender thirsty trusting unruffled upbeat vibrant vigilant vigorous wizardly wonderful "
    "xenodochial youthful zealous zen"
).split()
_RIGHT = (
    "albattani allen almeida archimedes ardinghelli aryabhata austin babbage banach bardeen "
    "bartik bassi bell benz bhabha bhaskara blackwell bohr booth borg bose boyd brahmagupta "
    "brattain brown carson chandrasekhar clarke colden cori cray curie darwin davinci dijkstra "
    "dubinsky easley edison einstein elion engelbart euclid euler fermat fermi feynman franklin "
    "galileo gates goldberg goldstine goldwasser golick goodall hamilton hawking heisenberg "
    "hermann hodgkin hoover hopper hugle hypatia jackson jang jennings jepsen johnson joliot "
    "jones kalam kapitsa keller kepler khorana kilby kirch knuth kowalevski lalande lamarr "
    "lamport leakey leavitt lewin lichterman liskov lovelace lumiere mahavira mayer mccarthy "
    "mcclintock mclean mcnulty meitner mendel mestorf minsky mirzakhani morse murdock napier "
    "nash neumann newton nightingale nobel noether northcutt noyce panini pare pasteur payne "
    "perlman pike poincare poitras ptolemy raman ramanujan ride ritchie roentgen rosalind "
    "saha sammet shaw shirley shockley sinoussi snyder spence stallman stonebraker swanson "
    "swartz swirles tesla thompson torvalds turing varahamihira visvesvaraya volhard wescoff "
    "wiles williams wilson wing wozniak wright yalow yonath"
).split()


def _choice(words: list[str]) -> str:
    return words[int.from_bytes(os.urandom(4), "big") % len(words)]


def generate() -> str:
    name = f"{_choice(_LEFT)}_{_choice(_RIGHT)}"
    if name == "boring_wozniak":  # Steve Wozniak is not boring (as Docker says)
        return generate()
    return name
