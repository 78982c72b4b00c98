"""The README's cross-benchmark queries and their output on the README's demo file:

    nanotasks compile --mirror data/sample --custom mychats=data/mychats.jsonl --db demo.db

tests/test_sqlfunctions.py runs each through `nanotasks sql` (checking this output),
sqlite-utils and a live Datasette, and those that need no nanotasks function through the plain
sqlite3 shell.
"""

QUERIES = [
    (
        "Examples and characters by task and split",
        """\
SELECT task, split, count(*) AS examples, sum(characters) AS characters
FROM examples GROUP BY task, split ORDER BY task, split""",
        """\
task        split            examples  characters
----------  ---------------  --------  ----------
arc         test                   12        2568
arc         train                  15        3732
arc         validation             12        2562
core        test                   16        1519
customjson  train                   3         590
gsm8k       test                   12        3019
gsm8k       train                  16        3973
humaneval   test                    5        4196
mmlu        auxiliary_train         8        2853
mmlu        dev                    12        2403
mmlu        test                   12        2625
mmlu        validation              8        1714
smoltalk    test                    5        1398
smoltalk    train                  14        9113""",
    ),
    (
        "MMLU questions per subject (auxiliary_train rows have no subject)",
        """\
SELECT subject, count(*) FILTER (WHERE split = 'test') AS test, count(*) AS all_splits
FROM examples WHERE task = 'mmlu' GROUP BY subject ORDER BY all_splits DESC, subject""",
        """\
subject                   test  all_splits
------------------------  ----  ----------
                             0           8
abstract_algebra             3           8
college_computer_science     3           8
high_school_biology          3           8
world_religions              3           8""",
    ),
    (
        "Conversations, messages and characters per SmolTalk source",
        """\
SELECT subject AS source, count(*) AS conversations,
       round(avg(messages), 1) AS messages, round(avg(characters)) AS characters
FROM examples WHERE task = 'smoltalk' GROUP BY source ORDER BY conversations DESC, source""",
        """\
source                      conversations  messages  characters
--------------------------  -------------  --------  ----------
smol-magpie-ultra                       5       2.4       272.0
everyday-conversations                  4       5.0       405.0
smol-rewrite                            2       3.0       533.0
explore-instruct-rewriting              1       2.0       193.0
longalign                               1       5.0      3935.0
metamathqa-50k                          1       2.0       277.0
openhermes-100k                         1       2.0       113.0
self-oss-instruct                       1       2.0       432.0
smol-constraints                        1       2.0       341.0
smol-summarize                          1       3.0       746.0
systemchats-30k                         1       5.0       427.0""",
    ),
    (
        "The ten longest SmolTalk conversations",
        """\
SELECT split, position, subject AS source, messages, characters
FROM examples WHERE task = 'smoltalk' ORDER BY characters DESC LIMIT 10""",
        """\
split  position  source                  messages  characters
-----  --------  ----------------------  --------  ----------
train        13  longalign                      5        3935
train         3  smol-summarize                 3         746
train         9  smol-rewrite                   3         637
train        12  smol-magpie-ultra              3         528
train         4  everyday-conversations         6         464
train         7  self-oss-instruct              2         432
test          1  smol-rewrite                   3         428
train         5  systemchats-30k                5         427
train        10  everyday-conversations         4         414
train         1  everyday-conversations         4         397""",
    ),
    (
        "Every example, in any benchmark, whose text mentions water",
        """\
SELECT task, subset, split, position, characters
FROM examples WHERE conversation_text(id) LIKE '%water%'""",
        """\
task      subset         split            position  characters
--------  -------------  ---------------  --------  ----------
arc       ARC-Challenge  test                    1         188
arc       ARC-Challenge  train                   4         274
arc       ARC-Challenge  validation              3         321
arc       ARC-Challenge  validation              5         335
arc       ARC-Easy       test                    3         203
arc       ARC-Easy       train                   0         236
arc       ARC-Easy       train                   3         339
mmlu      all            auxiliary_train         0         150
mmlu      all            auxiliary_train         6         242
smoltalk  default        train                  10         414
smoltalk  default        train                  11         341
smoltalk  default        train                  13        3935""",
    ),
    (
        "Messages and characters by role in SmolTalk, from the conversations' JSON",
        """\
SELECT json_extract(message.value, '$.role') AS role, count(*) AS messages,
       sum(length(json_extract(message.value, '$.content'))) AS characters
FROM examples, json_each(conversation(examples.id), '$.messages') AS message
WHERE task = 'smoltalk' GROUP BY role ORDER BY role""",
        """\
role       messages  characters
---------  --------  ----------
assistant        27        7400
system            7         863
user             27        2248""",
    ),
    (
        "GSM8K test questions that appear in a training split",
        """\
SELECT test.subset, test.position, train.task, train.subset AS in_subset,
       train.split AS in_split, train.position AS at, overlaps.kind
FROM overlaps
JOIN examples AS test ON test.id = overlaps.eval_id
JOIN examples AS train ON train.id = overlaps.train_id
WHERE test.task = 'gsm8k' AND test.split = 'test'
ORDER BY test.subset, test.position""",
        """\
subset    position  task        in_subset  in_split  at  kind
--------  --------  ----------  ---------  --------  --  -----
main             4  customjson  mychats    train      0  exact
main             5  customjson  mychats    train      1  ngram
socratic         4  customjson  mychats    train      0  exact
socratic         5  customjson  mychats    train      1  ngram""",
    ),
    (
        "CORE rows that appear in a training split",
        """\
SELECT core.subset AS data_file, core.position, train.task, train.subset AS in_subset,
       train.split AS in_split, train.position AS at, overlaps.kind
FROM overlaps
JOIN examples AS core ON core.id = overlaps.eval_id
JOIN examples AS train ON train.id = overlaps.train_id
WHERE core.task = 'core'
ORDER BY data_file, core.position""",
        """\
data_file                         position  task  in_subset  in_split  at  kind
--------------------------------  --------  ----  ---------  --------  --  -----
world_knowledge/science_mc.jsonl         0  arc   ARC-Easy   train      5  ngram""",
    ),
]

# The queries that use nanotasks' SQL functions, which the plain sqlite3 shell does not have.
NEEDS_FUNCTIONS = {"conversation_text(", "conversation("}


def plain(sql):
    return not any(name in sql for name in NEEDS_FUNCTIONS)
