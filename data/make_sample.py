"""Write data/sample/: nanotasks' own tiny, invented snapshot in Hugging Face Hub mirror layout.

Every row below was written for nanotasks; none is copied from the real datasets. The layout,
column names and Arrow types match the hub repositories so `nanotasks compile --mirror data/sample`
exercises the same code paths as a real mirror, including the awkward cases listed in data/README.md.

Run: python data/make_sample.py   (deterministic: rerunning gives byte-identical files)
"""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

OUT = Path(__file__).resolve().parent / "sample"
NOTE = (
    "This is nanotasks' invented sample of `{repo}`: a handful of rows written by hand for tests and "
    "the offline demo, in the same layout and column types as the hub repository. Regenerate with "
    "`python data/make_sample.py`.\n"
)

# --------------------------------------------------------------------------------------------------
# 1. allenai/ai2_arc: (id, question, choices, answerKey). A digit answerKey means labels "1".."n",
#    otherwise labels "A".."E"; 3- and 5-choice items are deliberate.
# --------------------------------------------------------------------------------------------------
ARC = {
    "ARC-Easy": {
        "train": [
            (
                "Mercury_7001234",
                "Which of these is a renewable resource?",
                ["coal", "natural gas", "wind", "oil"],
                "C",
            ),
            (
                "MCAS_2004_5_12",
                "A student pushes a toy car across a carpet and then across a wooden floor. Why does the car roll farther on the wooden floor?",
                [
                    "The floor has less friction.",
                    "The floor is colder.",
                    "The carpet is heavier.",
                    "The car is lighter on wood.",
                ],
                "A",
            ),
            (
                "NYSEDREGENTS_2012_4_9",
                "Which tool is best for measuring the mass of a rock?",
                ["ruler", "thermometer", "balance", "graduated cylinder"],
                "3",
            ),
            (
                "Mercury_SC_401122",
                "What happens to water when it freezes?",
                [
                    "It changes from a liquid to a solid.",
                    "It changes from a gas to a liquid.",
                    "It changes from a solid to a gas.",
                ],
                "A",
            ),
            (
                "MEA_2013_8_15",
                "Which organ pumps blood through the human body?",
                ["lungs", "heart", "liver", "stomach", "kidney"],
                "B",
            ),
            (
                "Mercury_7159032",
                "Plants make their own food through a process called",
                ["respiration", "digestion", "photosynthesis", "evaporation"],
                "C",
            ),
            (
                "ACTAAP_2009_5_3",
                "Which property of a mineral can be observed just by looking at it?",
                ["hardness", "luster", "density", "mass"],
                "B",
            ),
            (
                "Mercury_SC_415702",
                "A student wants to find out which paper towel absorbs the most water. Which of these should stay the same in each trial?",
                [
                    "the brand of paper towel",
                    "the amount of water used",
                    "the number of towels that get wet",
                    "the amount of water each towel absorbs",
                ],
                "B",
            ),
        ],
        "validation": [
            (
                "Mercury_7212345",
                "Which form of energy does a solar panel collect?",
                ["light", "sound", "chemical", "nuclear"],
                "A",
            ),
            (
                "NYSEDREGENTS_2010_4_22",
                "Which object is a good conductor of electricity?",
                ["rubber band", "copper wire", "wooden spoon", "plastic cup"],
                "2",
            ),
            (
                "Mercury_SC_400987",
                "Animals that eat only plants are called",
                ["herbivores", "carnivores", "omnivores", "decomposers"],
                "A",
            ),
            (
                "MDSA_2010_3_7",
                "Which of these is a living thing?",
                ["a rock", "a mushroom", "a cloud"],
                "B",
            ),
            (
                "Mercury_7085610",
                "Earth completes one rotation on its axis about every",
                ["hour", "day", "month", "year"],
                "B",
            ),
            (
                "VASoL_2008_5_31",
                "Which layer of Earth is made mostly of iron and nickel?",
                ["crust", "mantle", "core", "atmosphere"],
                "C",
            ),
        ],
        "test": [
            (
                "Mercury_7223011",
                "Which of these animals is a mammal?",
                ["shark", "frog", "dolphin", "penguin"],
                "C",
            ),
            (
                "NYSEDREGENTS_2013_4_14",
                "A student observes that a puddle gets smaller on a sunny day. Which process causes this?",
                ["condensation", "precipitation", "freezing", "evaporation"],
                "4",
            ),
            (
                "MEA_2016_5_8",
                "Which unit is used to measure the temperature of the air?",
                ["kilograms", "liters", "degrees Celsius", "meters", "newtons"],
                "C",
            ),
            (
                "Mercury_SC_409310",
                "Why does the Moon appear to change shape during a month?",
                [
                    "Clouds cover parts of it.",
                    "Different amounts of its lit side face Earth.",
                    "Earth's shadow covers it each night.",
                    "The Moon grows and shrinks.",
                ],
                "B",
            ),
            (
                "TIMSS_2007_8_12",
                "Which is an example of a chemical change?",
                ["ice melting", "paper being cut", "wood burning", "salt dissolving in water"],
                "C",
            ),
            (
                "Mercury_7267043",
                "Seeds are often carried away from the parent plant by",
                ["wind and animals", "rocks", "sunlight", "soil layers"],
                "A",
            ),
        ],
    },
    "ARC-Challenge": {
        "train": [
            (
                "Mercury_7024325",
                "A scientist measures how quickly a population of bacteria grows at different temperatures. Which is the dependent variable?",
                [
                    "temperature",
                    "growth rate of the bacteria",
                    "type of container",
                    "amount of light",
                ],
                "B",
            ),
            (
                "Mercury_SC_405198",
                "Which change would most likely increase the rate at which sugar dissolves in water?",
                [
                    "using colder water",
                    "stirring the water",
                    "using larger sugar crystals",
                    "adding the sugar as one lump",
                ],
                "B",
            ),
            (
                "NYSEDREGENTS_2008_8_27",
                "Which processes form sedimentary rock from layers of sediment?",
                [
                    "melting and cooling",
                    "compaction and cementation",
                    "heat and pressure",
                    "weathering of magma",
                ],
                "2",
            ),
            (
                "MEAP_2005_8_41",
                "A student drops a ball from several heights and measures how high it bounces. Which type of graph best shows the relationship between drop height and bounce height?",
                ["pie chart", "line graph", "pictograph", "Venn diagram", "flow chart"],
                "B",
            ),
            (
                "Mercury_7093450",
                "Which statement best explains why the planets stay in orbit around the Sun?",
                [
                    "The Sun's magnetic field pulls on them.",
                    "Gravity between the Sun and each planet keeps them moving in curved paths.",
                    "The planets are pushed by the solar wind.",
                    "Space has no friction, so they never move away.",
                ],
                "B",
            ),
            (
                "LEAP_2001_8_10",
                "A cell that lacks a nucleus is most likely from which group?",
                ["bacteria", "plants", "animals"],
                "A",
            ),
            (
                "Mercury_SC_LBS10590",
                "Which human activity most directly removes carbon dioxide from the atmosphere?",
                ["planting trees", "driving cars", "burning coal", "clearing forests"],
                "A",
            ),
        ],
        "validation": [
            (
                "Mercury_7112233",
                "An ice cube is placed in a glass of warm water. Which best describes the flow of energy?",
                [
                    "Cold flows from the ice to the water.",
                    "Heat flows from the water to the ice.",
                    "Heat flows from the ice to the water.",
                    "No energy flows until the ice melts.",
                ],
                "B",
            ),
            (
                "NYSEDREGENTS_2014_8_5",
                "Which body system carries oxygen to the cells?",
                ["circulatory", "skeletal", "digestive"],
                "1",
            ),
            (
                "Mercury_7290115",
                "Which feature of a bird's beak is most closely related to the kind of food it eats?",
                ["color", "shape", "age", "number of feathers nearby"],
                "B",
            ),
            (
                "Mercury_SC_406721",
                "Which is the best way to reduce the effect of errors in an experiment?",
                [
                    "repeat the trials several times",
                    "change several variables at once",
                    "use a smaller sample",
                    "record only the final result",
                ],
                "A",
            ),
            (
                "OHAT_2009_8_37",
                "Which factor most affects the climate of a coastal city compared with an inland city at the same latitude?",
                [
                    "distance from the equator",
                    "nearness to a large body of water",
                    "number of people",
                    "amount of traffic",
                    "height of buildings",
                ],
                "B",
            ),
            (
                "AKDE&ED_2008_4_20",
                "Which container would be best for keeping a drink cold?",
                ["foam cup", "metal can", "thin glass", "paper bag"],
                "A",
            ),
        ],
        "test": [
            (
                "Mercury_7234561",
                "A ball rolls down a ramp. At which point does it have the most kinetic energy?",
                [
                    "at the top of the ramp",
                    "halfway down the ramp",
                    "at the bottom of the ramp",
                    "before it is released",
                ],
                "C",
            ),
            (
                "NYSEDREGENTS_2016_8_33",
                "Which trait is inherited rather than learned?",
                ["riding a bicycle", "speaking French", "eye color", "playing piano"],
                "3",
            ),
            (
                "Mercury_SC_407695",
                "What is the main function of the roots of a plant?",
                ["to make food", "to absorb water", "to produce seeds"],
                "B",
            ),
            (
                "TAKS_2009_8_19",
                "Which change would most likely cause a population of rabbits to decrease?",
                ["an increase in foxes", "more rain", "more grass", "fewer hawks"],
                "A",
            ),
            (
                "MEA_2011_8_20",
                "Which is the smallest particle of an element that still has the properties of that element?",
                ["molecule", "cell", "compound", "mixture", "atom"],
                "E",
            ),
            (
                "Mercury_7016520",
                "Which gas do plants release during photosynthesis?",
                ["oxygen", "carbon dioxide", "nitrogen", "methane"],
                "A",
            ),
        ],
    },
}

# --------------------------------------------------------------------------------------------------
# 2. cais/mmlu: (subject, question, choices, answer index). Splits are sorted by subject, as on the hub.
# --------------------------------------------------------------------------------------------------
TF = ["True, True", "False, False", "True, False", "False, True"]
MMLU = {
    "auxiliary_train": [  # on the hub these rows have subject ""
        (
            "",
            "Mia had always wanted to play the violin, but her family could not afford lessons. One afternoon she heard music coming from the library basement, "
            "where an old man named Mr. Hale was teaching three children for free. He lent Mia a violin with a cracked case and told her to practice ten minutes a day. "
            "A year later she played at the town fair, and Mr. Hale sat in the front row, smiling.\nWhy did Mia start learning the violin in the library basement?",
            [
                "Her parents paid Mr. Hale.",
                "The lessons there were free.",
                "Her school required it.",
                "She wanted to win the town fair.",
            ],
            1,
        ),
        (
            "",
            "Mia had always wanted to play the violin, but her family could not afford lessons. One afternoon she heard music coming from the library basement, "
            "where an old man named Mr. Hale was teaching three children for free. He lent Mia a violin with a cracked case and told her to practice ten minutes a day. "
            "A year later she played at the town fair, and Mr. Hale sat in the front row, smiling.\nWhich of the following is the best title for the passage?",
            [
                "A Cracked Case",
                "The Town Fair",
                "A Gift of Music",
                "Ten Minutes a Day Is Too Little",
            ],
            2,
        ),
        (
            "",
            "Which of the following would a thermometer measure?",
            ["the wind speed", "how hot the air is", "how much it rained", "the air pressure"],
            1,
        ),
        ("", "Sound travels fastest through", ["air", "a vacuum", "water", "steel"], 3),
        (
            "",
            "In many cities, people now rent bicycles from street stations using a phone app. The bicycles can be returned to any station. Supporters say the "
            "programs cut traffic and pollution, while critics point out that bicycles are often left in the wrong places.\nWhat do critics of the programs complain about?",
            [
                "The bicycles are too expensive.",
                "The bicycles are often parked in the wrong places.",
                "The app does not work.",
                "There are too few stations.",
            ],
            1,
        ),
        (
            "",
            "Which of these is the best way to save water at home?",
            [
                "Take longer showers.",
                "Fix leaking taps.",
                "Water the garden at noon.",
                "Wash half loads of laundry.",
            ],
            1,
        ),
        (
            "",
            'The word "ancient" in the sentence "They explored the ancient ruins of the city" means _ .',
            ["very old", "very large", "very famous", "very dangerous"],
            0,
        ),
        (
            "",
            "A magnet will most likely pick up which object?",
            ["a paper clip", "a wooden ruler", "a rubber eraser", "a glass marble"],
            0,
        ),
    ],
    "validation": [
        (
            "abstract_algebra",
            "Find the number of generators of the cyclic group Z_12.",
            ["2", "4", "6", "12"],
            1,
        ),
        (
            "abstract_algebra",
            "Statement 1 | The intersection of two subgroups of a group is a subgroup. Statement 2 | The union of two subgroups of a group is always a subgroup.",
            TF,
            2,
        ),
        (
            "college_computer_science",
            "Which sorting algorithm has the best worst-case time complexity among the following?",
            ["quicksort", "insertion sort", "merge sort", "bubble sort"],
            2,
        ),
        (
            "college_computer_science",
            "A hash table resolves collisions by chaining and has load factor α. Under simple uniform hashing, what is the expected time of an unsuccessful search?",
            ["Θ(1)", "Θ(1 + α)", "Θ(log α)", "Θ(α²)"],
            1,
        ),
        (
            "high_school_biology",
            "Which process produces gametes with half the chromosome number of the parent cell?",
            ["mitosis", "meiosis", "binary fission", "budding"],
            1,
        ),
        (
            "high_school_biology",
            "The main function of red blood cells is to",
            ["fight infection", "transport oxygen", "clot blood", "produce hormones"],
            1,
        ),
        (
            "world_religions",
            "Which Hindu festival is widely known as the festival of lights?",
            ["Holi", "Diwali", "Navratri", "Pongal"],
            1,
        ),
        (
            "world_religions",
            "The Torah consists of how many books?",
            ["three", "five", "seven", "twelve"],
            1,
        ),
    ],
    "dev": [
        (
            "abstract_algebra",
            "Find the order of the element 3 in the group Z_8 under addition.",
            ["2", "4", "8", "3"],
            2,
        ),
        (
            "abstract_algebra",
            "Statement 1 | Every group of prime order is cyclic. Statement 2 | Every abelian group is cyclic.",
            TF,
            2,
        ),
        (
            "abstract_algebra",
            "How many elements does the symmetric group S_4 have?",
            ["4", "12", "16", "24"],
            3,
        ),
        (
            "college_computer_science",
            "What is the worst-case time complexity of inserting an element into a binary heap with n elements?",
            ["O(1)", "O(log n)", "O(n)", "O(n log n)"],
            1,
        ),
        (
            "college_computer_science",
            "Which data structure gives constant-time access to an element by its index?",
            ["array", "singly linked list", "binary search tree", "stack built on a linked list"],
            0,
        ),
        (
            "college_computer_science",
            "In 8-bit two's complement, what decimal value does the bit pattern 11111110 represent?",
            ["-2", "254", "-1", "-126"],
            0,
        ),
        (
            "high_school_biology",
            "Which organelle is the main site of aerobic respiration in eukaryotic cells?",
            ["ribosome", "mitochondrion", "Golgi apparatus", "lysosome"],
            1,
        ),
        (
            "high_school_biology",
            "In pea plants, tall (T) is dominant to short (t). What fraction of the offspring of a Tt x Tt cross are expected to be short?",
            ["0", "1/4", "1/2", "3/4"],
            1,
        ),
        (
            "high_school_biology",
            "Which molecule carries amino acids to the ribosome during translation?",
            ["mRNA", "DNA", "tRNA", "rRNA"],
            2,
        ),
        (
            "world_religions",
            "In which city is the Kaaba located?",
            ["Medina", "Jerusalem", "Mecca", "Cairo"],
            2,
        ),
        (
            "world_religions",
            "The Four Noble Truths are a central teaching of which tradition?",
            ["Hinduism", "Buddhism", "Jainism", "Sikhism"],
            1,
        ),
        (
            "world_religions",
            "What is the name of the Sikh scripture?",
            ["Guru Granth Sahib", "Tanakh", "Avesta", "Tripitaka"],
            0,
        ),
    ],
    "test": [
        (
            "abstract_algebra",
            "What is the order of the permutation (1 2 3)(4 5) in S_5?",
            ["2", "3", "5", "6"],
            3,
        ),
        (
            "abstract_algebra",
            "Which of the following rings is a field?",
            ["Z_6", "Z_7", "Z_8", "Z_9"],
            1,
        ),
        (
            "abstract_algebra",
            "Statement 1 | Every subgroup of an abelian group is normal. Statement 2 | Every group of order 4 is abelian.",
            TF,
            0,
        ),
        (
            "college_computer_science",
            "Which traversal of a binary search tree visits its keys in increasing order?",
            ["preorder", "inorder", "postorder", "level order"],
            1,
        ),
        (
            "college_computer_science",
            "How many edges does a tree with 10 vertices have?",
            ["8", "9", "10", "11"],
            1,
        ),
        (
            "college_computer_science",
            "Which of the following problems is decidable?",
            [
                "whether a Turing machine halts on a given input",
                "whether a context-free grammar generates a given string",
                "whether two Turing machines accept the same language",
                "whether a Turing machine accepts every input",
            ],
            1,
        ),
        (
            "high_school_biology",
            "What is the primary source of energy for most ecosystems on Earth?",
            ["sunlight", "geothermal heat", "decomposers", "ocean currents"],
            0,
        ),
        (
            "high_school_biology",
            "After soot darkens the bark of trees, a population of moths shifts toward darker coloring over many generations. This is an example of",
            ["genetic drift", "natural selection", "gene flow", "mutation alone"],
            1,
        ),
        (
            "high_school_biology",
            "Enzymes speed up chemical reactions by",
            [
                "raising the temperature of the cell",
                "lowering the activation energy",
                "changing the equilibrium constant",
                "adding energy to the products",
            ],
            1,
        ),
        (
            "world_religions",
            "Which Japanese religion centers on the veneration of kami?",
            ["Shinto", "Zen", "Confucianism", "Daoism"],
            0,
        ),
        (
            "world_religions",
            "The Five Pillars are a framework of practice in which religion?",
            ["Judaism", "Christianity", "Islam", "Zoroastrianism"],
            2,
        ),
        (
            "world_religions",
            "In Jainism, the principle of non-violence toward all living beings is called",
            ["ahimsa", "karma", "moksha", "dharma"],
            0,
        ),
    ],
}

# --------------------------------------------------------------------------------------------------
# 3. openai/gsm8k: (question, [(socratic sub-question, step)], final answer). The `main` answer is the
#    steps joined by newlines plus "#### final"; `socratic` prefixes each step with "sub-question ** ".
#    Same questions, same order, in both configs (as on the hub).
# --------------------------------------------------------------------------------------------------
GSM8K = {
    "train": [
        (
            "Maya baked 36 cookies on Monday and half as many on Tuesday. How many cookies did she bake altogether?",
            [
                (
                    "How many cookies did Maya bake on Tuesday?",
                    "Maya baked 36/2 = <<36/2=18>>18 cookies on Tuesday.",
                ),
                (
                    "How many cookies did she bake altogether?",
                    "Altogether she baked 36+18 = <<36+18=54>>54 cookies.",
                ),
            ],
            "54",
        ),
        (
            "A farmer planted 12 rows of 8 tomato plants and 5 rows of 6 pepper plants. How many plants did he plant in total?",
            [
                (
                    "How many tomato and pepper plants did he plant?",
                    "He planted 12*8 = <<12*8=96>>96 tomato plants and 5*6 = <<5*6=30>>30 pepper plants.",
                ),
                (
                    "How many plants did he plant in total?",
                    "In total he planted 96+30 = <<96+30=126>>126 plants.",
                ),
            ],
            "126",
        ),
        (
            "Each box holds 3 rows of 4 muffins. Jon filled 7 boxes for the school fair. How many muffins did he pack?",
            [
                ("How many muffins fit in one box?", "One box holds 3*4 = <<3*4>>12 muffins."),
                ("How many muffins did Jon pack?", "Jon packed 7*12 = <<7*12=84>>84 muffins."),
            ],
            "84",
        ),
        (
            "A jar has 15 red marbles and twice as many blue marbles. How many marbles are in the jar?",
            [
                (
                    "How many blue marbles are there?",
                    "Let b be the number of blue marbles, so b = 2*15 = <<b=2*15=30>>30.",
                ),
                (
                    "How many marbles are in the jar?",
                    "The jar holds 15+30 = <<15+30=45>>45 marbles.",
                ),
            ],
            "45",
        ),
        (
            "Every week the Lincoln School bake sale earns $200 from cookies and $50 from lemonade. How many dollars does it earn in 5 weeks?",
            [
                (
                    "How much does the bake sale earn each week?",
                    "Each week it earns 200+50 = $<<200+50=250>>250.",
                ),
                (
                    "How much does it earn in 5 weeks?",
                    "In 5 weeks it earns 250*5 = $<<250*5=1250>>1250.",
                ),
            ],
            "1,250",
        ),
        (
            "At 6 p.m. the temperature was 7 degrees. By midnight it had fallen by 12 degrees. What was the temperature at midnight, in degrees?",
            [
                (
                    "What was the temperature at midnight?",
                    "The temperature at midnight was 7-12 = <<7-12=-5>>-5 degrees.",
                )
            ],
            "-5",
        ),
        (
            "Sam ran 10 kilometers this week, split equally over 4 runs. How many kilometers long was each run?",
            [("How long was each run?", "Each run was 10/4 = <<10/4=2.5>>2.5 kilometers.")],
            "2.5",
        ),
        (
            "Lena buys 3 notebooks at $4 each and a pen for $2. She pays with a $20 bill. How much change does she get?",
            [
                ("How much do the notebooks cost?", "The notebooks cost 3*4 = $<<3*4=12>>12."),
                (
                    "How much does Lena spend in total?",
                    "She spends 12+2 = $<<12+2=14>>14 in total.",
                ),
                ("How much change does she get?", "Her change is 20-14 = $<<20-14=6>>6."),
            ],
            "6",
        ),
    ],
    "test": [
        (
            "A bus leaves the depot with 42 passengers. At the first stop 15 people get off and 9 get on. How many passengers are on the bus now?",
            [
                (
                    "How many passengers are left after 15 get off?",
                    "After 15 get off there are 42-15 = <<42-15=27>>27 passengers.",
                ),
                (
                    "How many passengers are on the bus now?",
                    "After 9 get on there are 27+9 = <<27+9=36>>36 passengers.",
                ),
            ],
            "36",
        ),
        (
            "A bookstore sold 1,200 books in January and 35% more books in February. How many books did it sell in February?",
            [
                (
                    "How many more books did it sell in February?",
                    "It sold 1200*0.35 = <<1200*0.35=420>>420 more books.",
                ),
                (
                    "How many books did it sell in February?",
                    "In February it sold 1200+420 = <<1200+420=1620>>1620 books.",
                ),
            ],
            "1,620",
        ),
        (
            "Three friends split the cost of a $22.50 pizza equally. How many dollars does each friend pay?",
            [("How much does each friend pay?", "Each friend pays 22.50/3 = $<<22.50/3=7.5>>7.5.")],
            "7.5",
        ),
        (
            "Omar has 4 packs of 6 stickers and his sister has 3 packs of 10 stickers. How many more stickers does his sister have?",
            [
                (
                    "How many stickers do Omar and his sister have?",
                    "Omar has 4*6 = <<4*6=24>>24 stickers and his sister has 3*10 = <<3*10=30>>30 stickers.",
                ),
                (
                    "How many more stickers does his sister have?",
                    "His sister has 30-24 = <<30-24=6>>6 more stickers.",
                ),
            ],
            "6",
        ),
        (
            "Jada had $30 in her account. She paid bills of $45 and $10 from it. What is her balance now, in dollars?",
            [
                ("How much were the bills in total?", "The bills came to 45+10 = $<<45+10=55>>55."),
                ("What is her balance now?", "Her balance is 30-55 = $<<30-55=-25>>-25."),
            ],
            "-25",
        ),
        (
            "Priya practices piano for 2 hours every day. How many hours does she practice in 3 weeks?",
            [
                ("How many days are in 3 weeks?", "A week has 7 days, so 3 weeks have 21 days."),
                ("How many hours does she practice?", "She practices 21*2 = <<21*2=42>>42 hours."),
            ],
            "42",
        ),
    ],
}

# --------------------------------------------------------------------------------------------------
# 4. openai/openai_humaneval: (prompt, canonical_solution, test, entry_point); task ids are HumanEval/<i>.
# --------------------------------------------------------------------------------------------------
HUMANEVAL = [
    (
        "from typing import List\n\n\ndef pairwise_differences(numbers: List[int]) -> List[int]:\n"
        '    """ Return the differences between each element of numbers and the element before it.\n'
        "    The result is one element shorter than the input; an empty or one-element list gives [].\n"
        '    >>> pairwise_differences([1, 4, 9, 16])\n    [3, 5, 7]\n    >>> pairwise_differences([5])\n    []\n    """\n',
        "    return [b - a for a, b in zip(numbers, numbers[1:])]\n",
        "\n\nMETADATA = {\n    'author': 'nanotasks',\n    'dataset': 'test'\n}\n\n\ndef check(candidate):\n"
        "    assert candidate([]) == []\n    assert candidate([7]) == []\n    assert candidate([1, 4, 9, 16]) == [3, 5, 7]\n"
        "    assert candidate([10, 3, 3, -2]) == [-7, 0, -5]\n",
        "pairwise_differences",
    ),
    (
        "import math\n\n\ndef is_perfect_square(n: int) -> bool:\n"
        '    """Return True if n is the square of an integer, False otherwise.\n'
        "    Negative numbers are never perfect squares.\n"
        '    >>> is_perfect_square(49)\n    True\n    >>> is_perfect_square(50)\n    False\n    >>> is_perfect_square(0)\n    True\n    """\n',
        "    if n < 0:\n        return False\n    root = math.isqrt(n)\n    return root * root == n\n",
        "\n\nMETADATA = {}\n\n\ndef check(candidate):\n    assert candidate(0) is True\n    assert candidate(1) is True\n"
        "    assert candidate(2) is False\n    assert candidate(16) is True\n    assert candidate(-4) is False\n"
        "    assert candidate(10 ** 12) is True\n    assert candidate(10 ** 12 + 1) is False\n",
        "is_perfect_square",
    ),
    (
        "\ndef count_vowel_runs(text: str) -> int:\n"
        '    """Count the maximal runs of consecutive vowels (a, e, i, o, u, in either case) in text.\n'
        "    >>> count_vowel_runs('beautiful')\n    3\n    >>> count_vowel_runs('rhythm')\n    0\n    \"\"\"\n",
        "    count = 0\n    in_run = False\n    for ch in text.lower():\n        if ch in 'aeiou':\n            if not in_run:\n"
        "                count += 1\n            in_run = True\n        else:\n            in_run = False\n    return count\n",
        "def check(candidate):\n\n    # Check some simple cases\n    assert candidate('beautiful') == 3\n    assert candidate('rhythm') == 0\n"
        "    assert candidate('') == 0\n    assert candidate('AEIOU') == 1\n    assert candidate('queueing') == 1\n"
        "    assert candidate('a e i') == 3, 'spaces end a run'\n",
        "count_vowel_runs",
    ),
    (
        "\n# Intervals are closed: (1, 3) covers 1, 2 and 3.\nfrom typing import List, Tuple\n\n\n"
        "def merge_touching(intervals: List[Tuple[int, int]]) -> List[Tuple[int, int]]:\n"
        '    """ Merge closed integer intervals that overlap or touch (one ends at n and the next starts at n + 1).\n'
        "    Return the merged intervals sorted by start.\n"
        '    >>> merge_touching([(5, 7), (1, 3), (4, 4)])\n    [(1, 7)]\n    >>> merge_touching([(1, 2), (4, 6)])\n    [(1, 2), (4, 6)]\n    """\n',
        "    merged = []\n    for start, end in sorted(intervals):\n        if merged and start <= merged[-1][1] + 1:\n"
        "            merged[-1] = (merged[-1][0], max(merged[-1][1], end))\n        else:\n            merged.append((start, end))\n    return merged\n",
        "\n\nMETADATA = {\n    'author': 'nanotasks',\n    'dataset': 'test'\n}\n\n\ndef check(candidate):\n    assert candidate([]) == []\n"
        "    assert candidate([(5, 7), (1, 3), (4, 4)]) == [(1, 7)]\n    assert candidate([(1, 2), (4, 6)]) == [(1, 2), (4, 6)]\n"
        "    assert candidate([(1, 10), (2, 3)]) == [(1, 10)]\n    assert candidate([(3, 3), (3, 3)]) == [(3, 3)]\n",
        "merge_touching",
    ),
    (
        "\ndef caesar_shift(s: str, k: int) -> str:\n"
        '    """Shift every lowercase letter of s by k places in the alphabet, wrapping around from\n'
        "    'z' to 'a'. Other characters are left unchanged. k may be negative or larger than 26.\n"
        "    >>> caesar_shift('abc xyz', 2)\n    'cde zab'\n    >>> caesar_shift('hello, world!', -1)\n    'gdkkn, vnqkc!'\n    \"\"\"\n",
        "    out = []\n    for ch in s:\n        if 'a' <= ch <= 'z':\n            out.append(chr((ord(ch) - ord('a') + k) % 26 + ord('a')))\n"
        "        else:\n            out.append(ch)\n    return ''.join(out)\n",
        "def check(candidate):\n    assert candidate('abc xyz', 2) == 'cde zab'\n    assert candidate('hello, world!', -1) == 'gdkkn, vnqkc!'\n"
        "    assert candidate('Zebra', 26) == 'Zebra'\n    assert candidate('abc', -27) == 'zab'\n    assert candidate('', 5) == ''\n",
        "caesar_shift",
    ),
]

# --------------------------------------------------------------------------------------------------
# 5. HuggingFaceTB/smol-smoltalk: (source, [(role, content), ...]).
# --------------------------------------------------------------------------------------------------
S, U, A = "system", "user", "assistant"
REWRITE_SYSTEM = (
    "You're an AI assistant for text re-writing. Rewrite the input text to make it more friendly and approachable "
    "while maintaining its main points."
)
GARDEN_PLAN = """Here is a practical plan for turning the empty lot into a community vegetable garden. It is organised by season so you can see what needs to happen first.

**1. Groundwork (late winter)**
- Confirm permission in writing. Even if the city has said yes informally, ask for a one-page agreement that covers how long you may use the lot, who is responsible for insurance, and what happens if the land is sold.
- Test the soil. Vacant city lots often contain lead or other contaminants from old paint and traffic. A basic test from a university extension office is inexpensive and tells you whether you can plant directly in the ground or should build raised beds with imported soil.
- Find the water. A garden of twenty beds can use several hundred liters a day in summer. Ask the city whether a hydrant connection or a neighbour's tap is possible, and budget for hoses and a meter.

**2. Design and people (early spring)**
- Hold an open meeting and collect names. Ten committed households is a good start; more people will join once they see something growing.
- Sketch a simple layout: a row of raised beds about 1.2 meters wide (so everyone can reach the middle), paths wide enough for a wheelbarrow, a shared compost area, and a shady corner with a bench.
- Write short ground rules together: how plots are assigned, what happens to plots that are neglected, whether pesticides are allowed, and how shared chores such as watering the common beds are divided.

**3. Building (spring)**
- Schedule two or three work days rather than one long one. Ask a local hardware store to donate lumber or sell it at cost, and borrow tools from a tool library if your city has one.
- Fill the beds with a mix of topsoil and compost. If the soil test came back poor, lay a landscape fabric under the beds.
- Put up a sign with the garden's name, a contact email, and the meeting schedule. It makes the project visible and discourages vandalism.

**4. Growing (late spring to autumn)**
- Start with forgiving crops: lettuce, radishes, bush beans, zucchini, tomatoes, and herbs. Leave one bed for children and one for a food bank donation.
- Set up a watering rota in a shared spreadsheet or group chat, with a backup person for every day.
- Hold a harvest potluck in late summer. It is the easiest way to thank volunteers and recruit new ones.

**5. Keeping it going (winter)**
- Review the year at a members' meeting, collect small annual dues to cover water and seeds, and elect two coordinators so the work does not depend on one person.

If you tell me how large the lot is and roughly how many people are interested, I can turn this into a week-by-week checklist and a starter budget."""
GARDEN_BUDGET = """Certainly. For a lot of about 400 square meters and 15 households, a starter budget might look like this:

| Item | Quantity | Estimated cost |
|---|---|---|
| Soil test | 2 samples | $60 |
| Lumber for raised beds (1.2 m x 3 m) | 15 beds | $1,350 |
| Topsoil and compost | 20 cubic meters | $900 |
| Hoses, nozzles and a water meter | 1 set | $250 |
| Seeds and seedlings | first season | $200 |
| Sign, tools and a lockbox | - | $240 |
| **Total** | | **$3,000** |

That works out to $200 per household if you split it evenly, but most gardens cover a large share with a small grant. Many cities, neighbourhood associations and garden centres offer grants of $500 to $2,500 for exactly this kind of project. I would apply for one grant, ask for in-kind donations of lumber and soil, and set annual dues at $25 to $40 per plot to cover water and seeds after the first year."""

SMOLTALK = {
    "train": [
        (
            "everyday-conversations",
            [
                (U, "Hi there"),
                (A, "Hello! How can I help you today?"),
                (U, "I'm trying to decide what to cook for dinner. Any quick ideas?"),
                (
                    A,
                    "Sure! A vegetable stir-fry with rice takes about 20 minutes, and so does pasta with garlic, olive oil and spinach. Do you have any ingredients on hand already?",
                ),
                (U, "I have eggs, some peppers and a bit of cheese."),
                (
                    A,
                    "Then an omelette or a frittata would be perfect. Sauté the peppers first, pour in the beaten eggs, and add the cheese just before it sets. Enjoy your dinner!",
                ),
            ],
        ),
        (
            "smol-magpie-ultra",
            [
                (
                    S,
                    "You are an AI assistant specialized in helping people improve their written English. Give clear explanations and short examples.",
                ),
                (U, "What is the difference between 'affect' and 'effect'?"),
                (
                    A,
                    "In most sentences, 'affect' is a verb meaning to influence something, and 'effect' is a noun meaning the result of a change.\n\n"
                    "- The cold weather affected the harvest. (verb)\n- The cold weather had a large effect on the harvest. (noun)\n\n"
                    "A less common use of 'effect' as a verb means to bring about, as in 'The new manager effected several changes.'",
                ),
            ],
        ),
        (
            "smol-rewrite",
            [
                (S, REWRITE_SYSTEM),
                (
                    U,
                    "Attention all staff. The parking lot will be closed Monday through Wednesday for resurfacing. Vehicles left in the lot will be towed at the owner's expense. Use the street or the garage on 5th Avenue.",
                ),
                (
                    A,
                    "Hi everyone! Just a heads-up: our parking lot is getting a fresh new surface, so it will be closed from Monday to Wednesday. "
                    "Please park on the street or in the garage on 5th Avenue during those days, since any cars left in the lot will unfortunately have to be towed. Thanks for your patience!",
                ),
            ],
        ),
        (
            "smol-summarize",
            [
                (
                    S,
                    "Provide a concise, objective summary of the input text in up to three sentences, focusing on key actions and intentions without using second or third person pronouns.",
                ),
                (
                    U,
                    "Dear Ana,\n\nThank you for sending the draft of the grant proposal. I read it over the weekend and I think the methods section is strong, but the budget "
                    "needs more detail about the field equipment. Could we meet on Thursday to go through it together? I'd also like to invite Marcus, since he ran the pilot study.\n\nBest,\nDaniel",
                ),
                (
                    A,
                    "The draft grant proposal was reviewed, with the methods section judged strong and the budget found to need more detail on field equipment. "
                    "A meeting on Thursday is proposed to revise it together. Inviting Marcus, who ran the pilot study, is also suggested.",
                ),
            ],
        ),
        (
            "everyday-conversations",
            [
                (U, "How often should I water a cactus?"),
                (
                    A,
                    "Most cacti need water only every two to three weeks in spring and summer, and about once a month or less in winter. Let the soil dry out completely between waterings.",
                ),
                (U, "What happens if I water it too much?"),
                (
                    A,
                    "Too much water can cause root rot. Signs include a soft, mushy base or yellowing stems. If you notice that, let it dry out and consider repotting it in fresh, fast-draining soil.",
                ),
            ],
        ),
        (
            "smol-magpie-ultra",
            [
                (
                    U,
                    "Translate into French: Where is the train station? I would like a coffee with milk, please.",
                ),
                (
                    A,
                    "Où est la gare ? Je voudrais un café crème, s'il vous plaît.\n\nNote : en français, on met une espace avant le point d'interrogation.",
                ),
            ],
        ),
        (
            "smol-magpie-ultra",
            [
                (U, "请用简单的中文解释什么是光合作用。"),
                (
                    A,
                    "光合作用是植物利用阳光、水和二氧化碳制造养分（葡萄糖）的过程，同时释放出氧气。这个过程主要发生在叶子里的叶绿体中。\n\n"
                    "日本語では「光合成（こうごうせい）」と言います。",
                ),
            ],
        ),
        (
            "everyday-conversations",
            [
                (U, "My friend's birthday is this weekend 🎉 what's a fun low-budget party idea?"),
                (
                    A,
                    "How about a taco night? 🌮 Everyone brings one topping, you make a playlist together, and finish with a homemade cake 🎂. It's cheap, easy, and very social!",
                ),
                (U, "Love it! Any game ideas? 😄"),
                (
                    A,
                    "Try a quick trivia round about your friend — whoever knows them best wins a silly prize 🏆. Charades is another classic that needs no equipment.",
                ),
            ],
        ),
        (
            "longalign",
            [
                (
                    S,
                    "You are a knowledgeable, practical assistant who helps community groups plan projects.",
                ),
                (
                    U,
                    "Our neighbourhood association has permission to use an empty city lot for a year. We'd like to make it a community vegetable garden, but none of us has done this before. Can you give us a plan?",
                ),
                (A, GARDEN_PLAN),
                (
                    U,
                    "It's about 400 square meters and around 15 households are interested. Could you give a rough starter budget?",
                ),
                (A, GARDEN_BUDGET),
            ],
        ),
        (
            "metamathqa-50k",
            [
                (
                    U,
                    "If a rectangle has a perimeter of 30 cm and its length is twice its width, what is its area?",
                ),
                (
                    A,
                    "Let the width be w. Then the length is 2w, and the perimeter is 2(w + 2w) = 6w = 30, so w = 5 cm and the length is 10 cm.\n\n"
                    "The area is 5 × 10 = 50 square centimeters.\n\nThe answer is: 50",
                ),
            ],
        ),
        (
            "self-oss-instruct",
            [
                (
                    U,
                    "Write a Python function `chunk(items, size)` that splits a list into consecutive chunks of length `size` (the last chunk may be shorter).",
                ),
                (
                    A,
                    'Here is a simple implementation using slicing:\n\n```python\ndef chunk(items, size):\n    if size <= 0:\n        raise ValueError("size must be positive")\n'
                    "    return [items[i:i + size] for i in range(0, len(items), size)]\n```\n\nFor example, `chunk([1, 2, 3, 4, 5], 2)` returns `[[1, 2], [3, 4], [5]]`.",
                ),
            ],
        ),
        (
            "systemchats-30k",
            [
                (
                    S,
                    "You are Captain Reyes, a friendly ship's captain who answers questions about sailing in a warm, nautical tone.",
                ),
                (U, "Captain, what does 'port' mean?"),
                (
                    A,
                    "Ahoy! 'Port' is the left-hand side of the ship when you're facing the bow, the front. The right-hand side is 'starboard'.",
                ),
                (U, "How do sailors remember which is which?"),
                (
                    A,
                    "An old trick: 'port' and 'left' both have four letters. And a ship's port light is red, like a glass of port wine. Fair winds!",
                ),
            ],
        ),
        (
            "smol-constraints",
            [
                (
                    U,
                    "Describe a good morning routine. Your response should contain exactly 3 bullet points. Use the markdown bullet points such as: * This is point 1.",
                ),
                (
                    A,
                    "* Wake up at the same time every day and drink a glass of water.\n* Spend ten minutes stretching or walking outside.\n* Eat a simple breakfast and review your three most important tasks for the day.",
                ),
            ],
        ),
        (
            "explore-instruct-rewriting",
            [
                (
                    U,
                    "Make this sentence more concise: In spite of the fact that it was raining heavily, the team decided to go ahead and continue with the match.",
                ),
                (A, "Despite the heavy rain, the team continued the match."),
            ],
        ),
    ],
    "test": [
        (
            "smol-magpie-ultra",
            [
                (
                    S,
                    "You are a helpful assistant with expertise in personal finance. Keep answers practical.",
                ),
                (U, "What is an emergency fund and how big should it be?"),
                (
                    A,
                    "An emergency fund is money set aside for unexpected costs such as a car repair or a job loss. A common guideline is three to six months of essential expenses, kept in an easy-to-access savings account.",
                ),
            ],
        ),
        (
            "everyday-conversations",
            [
                (U, "Hello, do you know a good way to learn new vocabulary?"),
                (
                    A,
                    "Hi! Spaced repetition works well: review words just before you would forget them, for example with flashcards.",
                ),
                (U, "How many new words a day is realistic?"),
                (
                    A,
                    "For most learners, 10 to 20 new words a day is sustainable alongside reviews.",
                ),
                (U, "Thanks, that's helpful."),
                (A, "You're welcome! Good luck with your studies."),
            ],
        ),
        (
            "smol-rewrite",
            [
                (S, REWRITE_SYSTEM),
                (
                    U,
                    "Your request has been denied because the form was incomplete. Resubmit with all required fields.",
                ),
                (
                    A,
                    "Thanks for sending your request! It looks like a few required fields were missing on the form, so we couldn't process it yet. Could you fill those in and send it again? We're happy to help.",
                ),
            ],
        ),
        (
            "smol-magpie-ultra",
            [
                (U, "¿Cómo se dice 'good morning' en español, alemán y japonés?"),
                (
                    A,
                    "- Español: «Buenos días»\n- Alemán: „Guten Morgen“ (y «Grüß Gott» en el sur)\n- Japonés: おはようございます (ohayō gozaimasu)",
                ),
            ],
        ),
        (
            "openhermes-100k",
            [
                (U, "Classify each animal as a mammal, bird or reptile: eagle, whale, iguana."),
                (A, "Eagle: bird\nWhale: mammal\nIguana: reptile"),
            ],
        ),
    ],
}

# --------------------------------------------------------------------------------------------------
# 6. dwyl/english-words/words_alpha.txt: lowercase a-z, sorted, one per line, CRLF line endings.
# --------------------------------------------------------------------------------------------------
WORDS = """
a about accept across add after against ago air allow alone already always amount angle answer apple arm arrive as at autumn baby bad ball
bank basket bear beautiful become bee begin believe below better big birth black block blow board body book both box branch break bring
brother build busy buy cake camp capital car care case catch cell chair change chart chick child circle claim clean climb close cloud coat
collect come company complete consider continue cook copy corner cost could country cover crease crop crowd current dance dark dead dear
decide degree describe design develop differ direct distant doctor dollar double draw dress drive dry during ear earth east edge egg either
element end energy enough equal evening ever exact except exercise experience eye fact fall famous farm fat favor feed feet field fight fill
find finger fire fish five floor flower follow foot force form found free friend front full game gas gentle girl glad go good grand gray
green ground grow guide hair hand happy hat he hear heat help here hill his hold home horse hour how human hunt ice if in include industry
instant interest iron it job joy jump keep key king knew lady land large late law lead least led leg less level life light line list little
locate lone look loud low made main make many mark mass match matter me measure meet metal middle mile million mine miss modern moment month
more most motion mountain move music my nation near neck neighbor never next nine noise nor nose nothing noun number oak observe of offer
often old once only operate or order original our over oxygen paint paper parent party past pattern people period phrase picture pitch plain
plane plant please poem pole populate pose possible pound practice present pretty probable process product property prove pull put question
quiet quotient radio rain range reach ready reason record region repeat represent rest rich right rise road roll root rose row rule safe
salt sand say school score search seat section seed segment self send sentence serve settle several shape sharp sheet shine shoe shore
should shout side sign silver simple sing sister six skill sky slip small smile so soil solution some song sound space special speed spend
spot spring stand start station steam step still stood store straight stream stretch strong study substance success sudden sugar suit sun
support surface swim symbol table take tall team tell ten test thank the them there thick thing third those thought three throw tie tiny to
told too tool total toward track train tree trip truck try turn two under until upon use valley vary very village voice wait wall war wash
water way wear week well were what when whether while who whose wide wild win window winter wish woman wood work would wrong year yes you
zebra zero
"""

# --------------------------------------------------------------------------------------------------
# 7. Two chat datasets for `--chat` (repositories of nanotasks' own, not on the hub; compiled only
#    when named). nanotasks/chat-openai, OpenAI style: (id, source or None, [(role, content), ...]),
#    an optional system first, an `id` column that is dropped. nanotasks/chat-sharegpt, ShareGPT
#    style in configs en and fr: (category, [(from, value, weight or None)]). Its en train
#    repeats a GSM8K test question word for word, so the overlaps pass has one to find.
# --------------------------------------------------------------------------------------------------
CHAT_OPENAI = {
    "train": [
        (
            "oa-001",
            "recipes",
            [
                (U, "What can I cook with eggs, spinach and a little cheese?"),
                (
                    A,
                    "A spinach omelette: wilt the spinach in a pan, pour in two beaten eggs, add the cheese, fold it over once the eggs have set.",
                ),
            ],
        ),
        (
            "oa-002",
            "travel",
            [
                (S, "You are a concise travel assistant."),
                (U, "Is a train or a plane better from Paris to Lyon?"),
                (
                    A,
                    "The train: the TGV takes about two hours centre to centre, less than flying once you count the airports.",
                ),
                (U, "And from Paris to Rome?"),
                (A, "Flying is faster there; the train takes eleven hours or more."),
            ],
        ),
        (
            "oa-003",
            None,
            [
                (U, "Give me a word that rhymes with orange."),
                (
                    A,
                    "No common English word rhymes perfectly with orange; 'door hinge' is the usual joke.",
                ),
            ],
        ),
        (
            "oa-004",
            "recipes",
            [
                (U, "How long should I boil an egg for a runny yolk?"),
                (
                    A,
                    "About six minutes from boiling water, then into cold water to stop the cooking.",
                ),
            ],
        ),
        (
            "oa-005",
            "writing",
            [
                (U, "Rewrite more politely: 'Send me the report now.'"),
                (A, "Could you send me the report when you have a moment? Thank you!"),
            ],
        ),
    ],
    "test": [
        (
            "oa-101",
            "travel",
            [
                (U, "What should I pack for a weekend of hiking?"),
                (
                    A,
                    "Layers, a rain jacket, sturdy shoes, water, snacks, a map and a small first-aid kit.",
                ),
            ],
        ),
        (
            "oa-102",
            "writing",
            [
                (S, "Answer in one sentence."),
                (U, "What is a haiku?"),
                (
                    A,
                    "A haiku is a short Japanese poem of three lines with five, seven and five syllables.",
                ),
            ],
        ),
    ],
}
H, G, SYS = "human", "gpt", "system"
CHAT_SHAREGPT = {
    "en": [
        (
            "math",
            [
                (
                    H,
                    "Omar has 4 packs of 6 stickers and his sister has 3 packs of 10 stickers. How many more stickers does his sister have?",
                    None,
                ),
                (
                    G,
                    "Omar has 4*6 = 24 stickers and his sister has 3*10 = 30, so she has 6 more.",
                    1.0,
                ),
            ],
        ),
        (
            "coding",
            [
                (SYS, "You are a helpful programming tutor.", None),
                (H, "What does `len([1, 2, 3])` return in Python?", None),
                (G, "It returns 3, the number of items in the list.", 1.0),
            ],
        ),
        (
            "coding",
            [
                (H, "How do I reverse a string in Python?", None),
                (G, "Slice it with a step of -1: `text[::-1]`.", 1.0),
                (H, "And a list?", None),
                (G, "The same slice works, or `items.reverse()` to reverse it in place.", 0.0),
            ],
        ),
        (
            "general",
            [
                (H, "Why is the sky blue?", None),
                (
                    G,
                    "Air scatters blue sunlight more than red, so blue light reaches our eyes from every direction.",
                    None,
                ),
            ],
        ),
    ],
    "fr": [
        (
            "general",
            [
                (H, "Quelle est la capitale de l'Australie ?", None),
                (G, "Canberra, et non Sydney comme on le croit souvent.", 1.0),
            ],
        ),
        (
            "cuisine",
            [
                (SYS, "Tu es un chef qui répond en une phrase.", None),
                (H, "Comment réussir une pâte à crêpes sans grumeaux ?", None),
                (
                    G,
                    "Verse le lait petit à petit sur la farine en fouettant, puis laisse reposer une heure.",
                    1.0,
                ),
            ],
        ),
    ],
}

# --------------------------------------------------------------------------------------------------
# 8. karpathy-public/eval_bundle.zip: nanochat's CORE eval bundle in miniature, the layout base_eval
#    unzips (eval_bundle/core.yaml, eval_meta_data.csv, eval_data/<category>/<file>.jsonl) with the
#    three row formats. Awkward cases: one file used by two tasks (as hellaswag is), a
#    continuation_delimiter with line breaks, key orders that differ from line to line, non-ASCII
#    both raw and as \u escapes, a CRLF file, a file whose last line has no line break, an extra
#    field (jeopardy's category), a baseline row for a task core.yaml does not list and a
#    description with commas and quotes. The first multiple choice query repeats a sample ARC-Easy
#    train question, for the overlaps pass to find.
# --------------------------------------------------------------------------------------------------
CORE_YAML = """icl_tasks:
- label: science_mc_zeroshot
  dataset_uri: world_knowledge/science_mc.jsonl
  num_fewshot:
  - 0
  icl_task_type: multiple_choice
- label: science_mc
  dataset_uri: world_knowledge/science_mc.jsonl
  num_fewshot:
  - 3
  icl_task_type: multiple_choice
  continuation_delimiter: '

    Answer: '
- label: whose_pronoun
  dataset_uri: language_understanding/whose_pronoun.jsonl
  num_fewshot:
  - 0
  icl_task_type: schema
- label: last_word
  dataset_uri: language_understanding/last_word.jsonl
  num_fewshot:
  - 0
  icl_task_type: language_modeling
- label: quiz_show
  dataset_uri: world_knowledge/quiz_show.jsonl
  num_fewshot:
  - 2
  icl_task_type: language_modeling
  continuation_delimiter: '

    Answer: '
"""
CORE_META = (
    "Eval Task,Task Category,Task Type,#shots,#datapoints,Random baseline,Centered Metric?,Description\n"
    'science_mc_zeroshot,world knowledge,multiple choice,0,5,25,,"Invented science questions, four choices each."\n'
    'science_mc,world knowledge,multiple choice,3,5,25,,"The same questions, with three ""shots"" before each."\n'
    "whose_pronoun,language understanding,schema,0,4,50,,Which noun a pronoun points to.\n"
    "last_word,language understanding,language modeling,0,4,0,,The last word of a passage.\n"
    'quiz_show,world knowledge,language modeling,2,3,0,,"Clues, and the answer in a few words."\n'
    "not_in_core,world knowledge,language modeling,0,1,12.5,,A row base_eval never reads.\n"
)
CORE_DATA = {
    "world_knowledge/science_mc.jsonl": [
        '{"query": "Question: A student pushes a toy car across a carpet and then across a wooden floor. Why does the car roll farther on the wooden floor?\\n", "choices": ["The floor has less friction.", "The floor is colder.", "The carpet is heavier.", "The car is lighter on wood."], "gold": 0}\n',
        '{"gold": 2, "query": "Question: Which gas do green plants give off in sunlight?", "choices": ["Nitrogen", "Helium", "Oxygen", "Carbon monoxide"]}\n',
        '{"query": "Question: Qu\'est-ce qui fait fondre la glace plus vite\u00a0?", "choices": ["Le sel", "Le sable", "L\'ombre", "Le vent froid"], "gold": 0}\n',
        '{"query":"Question: How many legs does a spider have?","choices":["6","8","10","12"],"gold":1}\n',
        '{"query": "Question: Which unit measures force? \\u2696", "choices": ["newton", "joule", "watt", "pascal = N/m\\u00b2"], "gold": 0}\n',
    ],
    "language_understanding/whose_pronoun.jsonl": [
        '{"context_options": ["The kettle would not fit on the shelf because the kettle", "The kettle would not fit on the shelf because the shelf"], "continuation": "was too low.", "gold": 1}\r\n',
        '{"continuation": "was tired.", "gold": 0, "context_options": ["Mia lent Ana her bike because Mia", "Mia lent Ana her bike because Ana"]}\r\n',
        '{"context_options": ["Der Hund jagte die Katze, bis der Hund", "Der Hund jagte die Katze, bis die Katze"], "continuation": "auf einen Baum kletterte.", "gold": 1}\r\n',
        '{"context_options": ["The trophy beat the cup in the vote because the trophy", "The trophy beat the cup in the vote because the cup"], "continuation": "was shinier.", "gold": 0}\r\n',
    ],
    "language_understanding/last_word.jsonl": [
        '{"context": "She put the letter in an envelope, wrote the address, stuck on a", "continuation": "stamp"}\n',
        '{"context": "\\"Close the door,\\" he said.\\n\\nShe closed the", "continuation": "door"}\n',
        '{"context": "東京は日本の首都で、大阪は第二の", "continuation": "都市"}\n',
        '{"context": "After the long winter the river finally began to", "continuation": "thaw"}',
    ],
    "world_knowledge/quiz_show.jsonl": [
        '{"context": "SCIENCE: This planet is known as the red planet", "continuation": "Mars", "category": "science"}\n',
        '{"context": "WORDS: From the Greek for \\"self\\" and \\"writing\\", a signature of one\'s own", "continuation": "autograph", "category": "words"}\n',
        '{"context": "CAPITALS: It is the capital of Canada", "continuation": "Ottawa", "category": "capitals"}\n',
    ],
}

# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------
STR_LIST = pa.list_(pa.string())
ARC_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("question", pa.string()),
        ("choices", pa.struct([("text", STR_LIST), ("label", STR_LIST)])),
        ("answerKey", pa.string()),
    ]
)
MMLU_STRUCT = pa.struct(
    [
        ("answer", pa.int64()),
        ("choices", STR_LIST),
        ("question", pa.string()),
        ("subject", pa.string()),
    ]
)
MMLU_SCHEMA = pa.schema(
    [
        ("question", pa.string()),
        ("subject", pa.string()),
        ("choices", STR_LIST),
        ("answer", pa.int64()),
    ]
)
MMLU_AUX_SCHEMA = pa.schema([("train", MMLU_STRUCT)])
GSM8K_SCHEMA = pa.schema([("question", pa.string()), ("answer", pa.string())])
HUMANEVAL_SCHEMA = pa.schema(
    [(c, pa.string()) for c in ("task_id", "prompt", "canonical_solution", "test", "entry_point")]
)
SMOLTALK_SCHEMA = pa.schema(
    [
        ("messages", pa.list_(pa.struct([("content", pa.string()), ("role", pa.string())]))),
        ("source", pa.string()),
    ]
)
CHAT_OPENAI_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("messages", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
        ("source", pa.string()),
    ]
)
CHAT_SHAREGPT_SCHEMA = pa.schema(
    [
        (
            "conversations",
            pa.list_(
                pa.struct([("from", pa.string()), ("value", pa.string()), ("weight", pa.float64())])
            ),
        ),
        ("category", pa.string()),
    ]
)


def write_parquet(repo, path, schema, rows):
    dest = OUT / repo / path
    dest.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), dest)


def write_readme(repo, configs):
    """configs: {config_name: {split: path_glob}} -> README.md with a hub-style `configs:` block."""
    lines = ["---", "configs:"]
    for name, splits in configs.items():
        lines += [f"- config_name: {name}", "  data_files:"]
        for split, glob in splits.items():
            lines += [f"  - split: {split}", f"    path: {glob}"]
    lines += ["---", "", NOTE.format(repo=repo)]
    (OUT / repo / "README.md").write_text("\n".join(lines), encoding="utf-8")


def shard(config, split):
    return f"{config}/{split}-00000-of-00001.parquet"


def arc_row(id_, question, texts, answer_key):
    labels = (
        [str(i + 1) for i in range(len(texts))]
        if answer_key.isdigit()
        else list("ABCDE"[: len(texts)])
    )
    assert answer_key in labels, id_
    return {
        "id": id_,
        "question": question,
        "choices": {"text": texts, "label": labels},
        "answerKey": answer_key,
    }


def gsm8k_answer(steps, final, socratic):
    lines = [f"{q} ** {s}" if socratic else s for q, s in steps]
    return "\n".join(lines + [f"#### {final}"])


def check_humaneval(prompt, solution, test, entry_point):
    program = prompt + solution + "\n\n" + test + "\n" + f"check({entry_point})"
    subprocess.run([sys.executable, "-c", program], check=True, timeout=30)


def write_bundle(dest):
    """The CORE bundle as a zip whose bytes depend only on its contents (fixed dates and modes)."""
    files = {"core.yaml": CORE_YAML, "eval_meta_data.csv": CORE_META}
    files.update({f"eval_data/{uri}": "".join(lines) for uri, lines in CORE_DATA.items()})
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dest, "w") as bundle:
        for name, text in files.items():
            info = zipfile.ZipInfo(f"eval_bundle/{name}", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
            bundle.writestr(info, text.encode("utf-8"))


def main():
    shutil.rmtree(OUT, ignore_errors=True)

    repo = "allenai/ai2_arc"
    for config, splits in ARC.items():
        for split, rows in splits.items():
            write_parquet(repo, shard(config, split), ARC_SCHEMA, [arc_row(*r) for r in rows])
    write_readme(repo, {c: {s: f"{c}/{s}-*" for s in splits} for c, splits in ARC.items()})

    repo = "cais/mmlu"
    for split, rows in MMLU.items():
        assert all(len(ch) == 4 and 0 <= ans < 4 for _, _, ch, ans in rows)
        records = [
            {"question": q, "subject": subj, "choices": ch, "answer": ans}
            for subj, q, ch, ans in rows
        ]
        write_parquet(repo, shard("all", split), MMLU_SCHEMA, records)
        if split == "auxiliary_train":
            write_parquet(
                repo,
                shard("auxiliary_train", "train"),
                MMLU_AUX_SCHEMA,
                [{"train": r} for r in records],
            )
    write_readme(
        repo,
        {
            "all": {s: f"all/{s}-*" for s in MMLU},
            "auxiliary_train": {"train": "auxiliary_train/train-*"},
        },
    )

    repo = "openai/gsm8k"
    for config in ("main", "socratic"):
        for split, rows in GSM8K.items():
            records = [
                {"question": q, "answer": gsm8k_answer(steps, final, config == "socratic")}
                for q, steps, final in rows
            ]
            write_parquet(repo, shard(config, split), GSM8K_SCHEMA, records)
    write_readme(repo, {c: {s: f"{c}/{s}-*" for s in GSM8K} for c in ("main", "socratic")})

    repo = "openai/openai_humaneval"
    records = []
    for i, (prompt, solution, test, entry_point) in enumerate(HUMANEVAL):
        check_humaneval(prompt, solution, test, entry_point)
        records.append(
            {
                "task_id": f"HumanEval/{i}",
                "prompt": prompt,
                "canonical_solution": solution,
                "test": test,
                "entry_point": entry_point,
            }
        )
    write_parquet(repo, shard("openai_humaneval", "test"), HUMANEVAL_SCHEMA, records)
    write_readme(repo, {"openai_humaneval": {"test": "openai_humaneval/test-*"}})

    repo = "HuggingFaceTB/smol-smoltalk"
    for split, rows in SMOLTALK.items():
        records = []
        for source, turns in rows:
            roles = [r for r, _ in turns][
                1 if turns[0][0] == S else 0 :
            ]  # optional leading system, then user/assistant pairs
            assert len(roles) >= 2 and roles == [U, A] * (len(roles) // 2), (source, roles)
            records.append(
                {"messages": [{"content": c, "role": r} for r, c in turns], "source": source}
            )
        write_parquet(repo, shard("data", split), SMOLTALK_SCHEMA, records)
    write_readme(repo, {"default": {s: f"data/{s}-*" for s in SMOLTALK}})

    repo = "nanotasks/chat-openai"
    for split, rows in CHAT_OPENAI.items():
        records = [
            {"id": id_, "messages": [{"role": r, "content": c} for r, c in turns], "source": source}
            for id_, source, turns in rows
        ]
        write_parquet(repo, shard("data", split), CHAT_OPENAI_SCHEMA, records)
    write_readme(repo, {"default": {s: f"data/{s}-*" for s in CHAT_OPENAI}})

    repo = "nanotasks/chat-sharegpt"
    for config, rows in CHAT_SHAREGPT.items():
        records = [
            {
                "conversations": [{"from": f, "value": v, "weight": w} for f, v, w in turns],
                "category": category,
            }
            for category, turns in rows
        ]
        write_parquet(repo, shard(config, "train"), CHAT_SHAREGPT_SCHEMA, records)
    write_readme(repo, {c: {"train": f"{c}/train-*"} for c in CHAT_SHAREGPT})

    words = sorted(set(WORDS.split()))
    assert all(w.isascii() and w.isalpha() and w.islower() for w in words)
    dest = OUT / "dwyl/english-words/words_alpha.txt"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes("".join(w + "\r\n" for w in words).encode("ascii"))

    write_bundle(OUT / "karpathy-public/eval_bundle.zip")


if __name__ == "__main__":
    main()
