"""`nanotasks browse` in a real headless browser: Debian's chromium driven by Selenium through
chromedriver (.ci/run installs both), against the real command serving the demo file on
127.0.0.1. The tests assert what a person sees on each kind of page and that no request leaves
127.0.0.1. Each page's screenshot is saved in the test's temporary directory, and copied to
$NANOTASKS_SHOTS when that is set."""

import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from base64 import b64decode
from pathlib import Path

import pytest

from nanotasks.browse.transcript import shared_runs
from nanotasks.store.reader import Store
from nanotasks.store.sqlfunctions import register
from nanotasks.store.text import normalise_text, prompt_of
from tests.conftest import NANOTASKS, invoke, nanotasks, require_plugin

# One worker of pytest-xdist runs them all (`--dist loadgroup`): one server and one browser.
pytestmark = pytest.mark.xdist_group("browse")

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
]


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def browsing(db):
    """`nanotasks browse` on a free port, once it has printed the start page's address: the
    process and that address."""
    require_plugin("datasette", "nanotasks_browse", "nanotasks.browse")
    process = subprocess.Popen(
        [*NANOTASKS, "browse", "--db", db, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline()
    assert line.startswith("http://127.0.0.1:"), line + process.communicate()[1]
    return process, line.split()[0]


def stopped(process, signum=signal.SIGINT):
    """Ctrl-C (or `signum`): the exit status, and what the server printed on standard error."""
    process.send_signal(signum)
    _, err = process.communicate(timeout=30)
    return process.returncode, err


@pytest.fixture(scope="module")
def server(demo_db):
    """`nanotasks browse` on a free port: yields the start page's address, which it prints."""
    before = sha256(demo_db)
    process, start = browsing(demo_db)
    try:
        yield start
    finally:
        assert stopped(process) == (130, "")
    assert sha256(demo_db) == before


@pytest.fixture(scope="module")
def browser(server):
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(
            "needs Debian's chromium and chromium-driver: apt-get install chromium chromium-driver"
        )
    webdriver = pytest.importorskip(
        "selenium.webdriver"
    )  # the test extra: pip install -e '.[test]'
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability(
        "goog:loggingPrefs", {"performance": "ALL"}
    )  # every request, for local_only
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def look(browser, server, tmp_path):
    """Checks the page the browser shows: loading it asked nothing of any host but the server,
    and it is no error page. Saves its screenshot as NAME.png."""
    origin = server.split("/demo/")[0]

    def look(name):
        assert "Error" not in browser.title, browser.find_element("tag name", "body").text
        local_only(browser, origin)
        screenshot(browser, tmp_path / f"{name}.png")
        return browser

    return look


@pytest.fixture
def visit(browser, server, look):
    """Opens a page (a path on the server), then looks at it."""

    def visit(path, name):
        browser.get_log("performance")  # drop what earlier pages asked for
        browser.get(server.split("/demo/")[0] + path)
        return look(name)

    return visit


def local_only(browser, origin):
    requests = [json.loads(entry["message"])["message"] for entry in browser.get_log("performance")]
    urls = [
        r["params"]["request"]["url"]
        for r in requests
        if r["method"] == "Network.requestWillBeSent"
    ]
    assert any(url.startswith(origin + "/") for url in urls), "the performance log saw no request"
    network = [
        url for url in urls if urllib.parse.urlparse(url).scheme not in ("data", "chrome", "about")
    ]
    assert [url for url in network if not url.startswith(origin + "/")] == []


def screenshot(browser, path):
    size = browser.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 4000), "scale": 1}
    shot = browser.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path.write_bytes(b64decode(shot["data"]))
    if os.environ.get("NANOTASKS_SHOTS"):
        Path(os.environ["NANOTASKS_SHOTS"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(os.environ["NANOTASKS_SHOTS"]) / path.name)


def sql(db, query):
    return json.loads(invoke("sql", "--db", db, "--json", query, check=True).stdout)


def css(browser, selector):
    return browser.find_elements("css selector", selector)


def test_browse_prints_the_start_page(server):
    assert server.endswith("/demo/-/nanotasks")


def test_start_page_lists_every_split_with_a_histogram(visit, server, demo_db):
    page = visit(urllib.parse.urlparse(server).path, "start")
    # Read in one script, not an element at a time: ~1,000 WebDriver round trips took 7 s.
    rows = page.execute_script("""
        return [...document.querySelectorAll('.nt-splits tbody tr')].map(row => ({
            cells: [...row.querySelectorAll('td')].map(cell => cell.innerText.trim()),
            bars: [...row.querySelectorAll('svg.nt-histogram rect')].map(
                bar => [bar.textContent, bar.getAttribute('height')])
        }))""")
    splits = sql(
        demo_db,
        "SELECT s.task, s.subset, s.split, s.rows, s.repo, s.sha256, "
        "sum(e.characters) AS characters FROM splits s JOIN example_data e "
        "ON e.id BETWEEN s.first_example AND s.first_example + s.rows - 1 "
        "GROUP BY s.id ORDER BY s.task, s.subset, s.split",
    )
    # and a row for each stored file (the word list, core.yaml, eval_meta_data.csv and
    # core_settings.json), from the files table
    assert len(splits) == 22 and len(rows) == len(splits) + 4
    for split, row in zip(splits, rows, strict=False):  # the files' rows are last
        cells = row["cells"]
        assert cells[:5] == [
            split["task"],
            split["subset"],
            split["split"],
            str(split["rows"]),
            f"{split['characters']:,}",
        ]
        assert cells[7].startswith(split["repo"]) and cells[8:] == ["mirror", split["sha256"][:12]]
        counts = [int(text.rsplit(": ", 1)[1]) for text, _ in row["bars"]]
        assert sum(counts) == split["rows"]
        assert any(int(height) > 0 for _, height in row["bars"])


def test_an_example_is_a_transcript(visit):
    page = visit("/demo/-/nanotasks/gsm8k/main/test/0", "example")
    assert page.find_element("tag name", "h1").text == "gsm8k main/test #0"
    messages = css(page, ".nt-message")
    assert [m.find_element("css selector", ".nt-role").text.lower() for m in messages] == [
        "user",
        "assistant",
    ]
    user, assistant = (m.find_element("css selector", ".nt-text").text for m in messages)
    assert user.startswith(
        "Omar has 4 packs of 6 stickers and his sister has 3 packs of 10 stickers."
    )
    assert assistant.endswith("6 more stickers.\n#### 6")  # its line breaks kept
    calls = [(c.text, c.get_attribute("title")) for c in css(page, ".nt-assistant .call")]
    assert [text for text, _ in calls] == ["4*6", "3*10", "30-24"] and calls[0][
        1
    ] == "calculator call"
    assert [r.text for r in css(page, ".nt-assistant .result")] == ["=24", "=30", "=6"]
    gold = css(page, ".nt-assistant .gold")
    assert [g.text for g in gold] == ["6"] and gold[0].get_attribute("title") == "gold answer"
    assert page.find_element("css selector", ".nt-answer").text == "6"


@pytest.mark.parametrize(
    "path, gold, others",
    [
        ("arc/ARC-Easy/test/0", "- Different amounts of its lit side face Earth.=B", 3),
        ("mmlu/all/test/0", "- 6=D", 3),
        ("core/world_knowledge%2Fscience_mc.jsonl/test/0", "- The floor has less friction.=0", 3),
        (  # a schema row: its context options completed by the continuation, the gold marked
            "core/language_understanding%2Fwhose_pronoun.jsonl/test/2",
            "- Der Hund jagte die Katze, bis die Katze auf einen Baum kletterte.=1",
            1,
        ),
    ],
)
def test_the_correct_choice_is_highlighted(visit, path, gold, others):
    page = visit(f"/demo/-/nanotasks/{path}", path.split("/")[0])
    highlighted = css(page, ".nt-user .choice.gold")
    assert [h.text for h in highlighted] == [gold]
    assert len(css(page, ".nt-user .choice:not(.gold)")) == others
    plain = css(page, ".nt-user .choice:not(.gold)")[0].value_of_css_property("background-color")
    assert highlighted[0].value_of_css_property("background-color") != plain
    assert css(page, ".nt-assistant .gold")[0].text == gold[-1]


def test_a_long_message_is_folded_until_opened(visit):
    page = visit("/demo/-/nanotasks/smoltalk/default/train/13", "folded")
    folds = css(page, "details.nt-fold")
    assert len(folds) == 1
    text = folds[0].find_element("css selector", ".nt-text")
    assert not text.is_displayed() and "2,674 characters" in folds[0].text
    folds[0].find_element("tag name", "summary").click()
    assert text.is_displayed() and len(text.text) > 2000


def test_the_examples_table_shows_transcripts_that_open_the_example(visit):
    page = visit("/demo/examples?task=gsm8k&subset=main&split=test", "table")
    cells = css(page, "td.col-body")
    assert len(cells) == 6
    assert "Omar has 4 packs" in cells[0].find_element("css selector", ".nt-user").text
    cells[0].find_element("css selector", "a.nt-open").click()
    assert page.find_element("tag name", "h1").text == "gsm8k main/test #0"


def test_overlaps_name_their_examples(visit):
    page = visit("/demo/overlaps", "overlaps")
    links = [a.text for a in css(page, "td.col-eval_id a, td.col-train_id a")]
    assert links[:4] == [
        "core world_knowledge/science_mc.jsonl/test #0",
        "arc ARC-Easy/train #5",
        "gsm8k main/test #4",
        "customjson mychats/train #0",
    ]


def test_the_heatmap_counts_the_overlaps_table(visit, demo_db):
    page = visit("/demo/-/nanotasks/contamination", "contamination")
    cells = page.execute_script("""
        const columns = [...document.querySelectorAll('.nt-heatmap thead th.nt-column')]
            .map(th => th.innerText);
        return [...document.querySelectorAll('.nt-heatmap tbody tr')].flatMap(tr =>
            [...tr.querySelectorAll('td')].map((td, i) => [
                tr.querySelector('th').innerText.replace(/ \\(.*/, ''),
                columns[i], td.innerText, getComputedStyle(td).backgroundColor]));""")
    shown = {(row, column): int(text) for row, column, text, _ in cells if text}
    expected = {}
    for item in json.loads(nanotasks("overlap", "--db", demo_db, "--json").stdout)["splits"]:
        for found in item["found_in"]:
            expected[
                f"{item['task']} {item['subset']}/{item['split']}",
                f"{found['task']} {found['subset']}/{found['split']}",
            ] = found["exact"] + found["ngram"]
    assert (
        shown
        == expected
        == {
            ("core world_knowledge/science_mc.jsonl/test", "arc ARC-Easy/train"): 1,
            ("gsm8k main/test", "customjson mychats/train"): 2,
            ("gsm8k socratic/test", "customjson mychats/train"): 2,
        }
    )
    colours = {background for _, _, text, background in cells if not text}
    assert len(colours) == 1 and all(
        background not in colours for _, _, text, background in cells if text
    )
    evaluation, training = sql(
        demo_db,
        "SELECT count(*) AS n FROM splits WHERE split IN ('validation', 'dev', 'test') "
        "UNION ALL SELECT count(*) FROM splits WHERE split NOT IN ('validation', 'dev', 'test')",
    )
    assert len(cells) == evaluation["n"] * training["n"]


def test_a_heatmap_cell_opens_the_pairs_with_the_shared_words_marked(visit, look):
    visit("/demo/-/nanotasks/contamination", "contamination").execute_script("""
        [...document.querySelectorAll('.nt-heatmap tbody tr')]
            .find(tr => tr.querySelector('th').innerText.startsWith('gsm8k main/test'))
            .querySelector('.nt-cell a').click();""")
    page = look("pairs")
    assert page.find_element("tag name", "h1").text == "gsm8k main/test in customjson mychats/train"
    pairs = css(page, ".nt-pair")
    assert [p.find_element("css selector", ".nt-kind").text for p in pairs] == [
        "the same prompt",
        "a shared run of 13 words",
    ]
    marked = [
        [
            normalise_text(" ".join(m.text for m in side.find_elements("css selector", ".shared")))
            for side in pair.find_elements("css selector", ".nt-side")
        ]
        for pair in pairs
    ]
    assert all(evaluation == training for evaluation, training in marked)
    prompt = pairs[0].find_element("css selector", ".nt-side .nt-user .nt-text").text
    assert marked[0][0] == normalise_text(prompt)  # the same prompt: all of it
    assert marked[1][0] == (
        "a bus leaves the depot with 42 passengers at the first stop 15 people get off and 9 get on"
    )
    background = css(page, ".shared")[0].value_of_css_property("background-color")
    assert background != page.find_element("css selector", ".nt-user").value_of_css_property(
        "background-color"
    )


def test_the_marked_runs_are_the_overlaps_the_compiler_found(demo_db):
    """Each ngram pair of the `overlaps` table shares a run the pages mark; each exact pair has
    the same prompt."""
    store = Store(demo_db)
    splits = store.splits()

    def read(example_id):
        split = next(s for s in splits if 0 <= example_id - s["first_example"] < s["rows"])
        return store.read(
            store.split(split["task"], split["subset"], split["split"]),
            example_id - split["first_example"],
        )

    pairs = sql(demo_db, "SELECT eval_id, train_id, kind FROM overlaps")
    assert {p["kind"] for p in pairs} == {"exact", "ngram"}
    for pair in pairs:
        evaluation, training = read(pair["eval_id"]), read(pair["train_id"])
        if pair["kind"] == "exact":
            assert normalise_text(prompt_of(evaluation["messages"])) == normalise_text(
                prompt_of(training["messages"])
            )
        else:
            assert shared_runs(evaluation, training)
    assert not shared_runs(read(pairs[0]["eval_id"]), read(pairs[1]["train_id"]))


def test_browse_is_read_only_and_bounded(server, demo_db):
    """Datasette refuses writing SQL, and its time limit stops a query that calls nanotasks'
    functions without end."""
    database = server.rsplit("/-/", 1)[0]
    for query, error in [
        ("DELETE FROM overlaps", "Statement must be a SELECT"),
        (
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
            "SELECT count(conversation_text(1 + i % 100)) FROM n",
            "SQL query took too long",
        ),
    ]:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(
                f"{database}.json?" + urllib.parse.urlencode({"sql": query}), timeout=30
            )
        assert error in json.load(refused.value)["error"]
    assert sql(demo_db, "SELECT count(*) AS n FROM overlaps") == [{"n": 5}]


def test_browse_refuses_one_huge_value(demo_db):
    """A value is bounded as in `nanotasks sql`, so one call cannot grow the server. (Its own
    server: Datasette logs a failed query on standard error.)"""
    process, start = browsing(demo_db)
    database = start.rsplit("/-/", 1)[0]
    queries = ["SELECT zeroblob(999999999) AS z", "SELECT length(randomblob(999999999)) AS n"]
    try:
        for query in queries:
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(
                    f"{database}.json?" + urllib.parse.urlencode({"sql": query}), timeout=30
                )
            assert json.load(refused.value)["error"] == "string or blob too big"
    finally:
        status, err = stopped(process)
    assert status == 130
    assert [line.endswith(": string or blob too big") for line in err.splitlines()] == [True] * 2


def test_browse_answers_only_requests_addressed_to_it(server):
    """A page of another site that has pointed its own name at 127.0.0.1 (DNS rebinding)
    sends its name as Host: refused, so it cannot read the file."""
    url = urllib.parse.urlsplit(server)
    answers = {}
    for host in (
        "attacker.example",
        f"attacker.example:{url.port}",
        f"localhost:{url.port}",
        url.netloc,
    ):
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        connection.request("GET", url.path, headers={"Host": host})
        response = connection.getresponse()
        answers[host] = response.status, response.read()
        connection.close()
    refusal = f"nanotasks browse answers only 127.0.0.1:{url.port} and localhost:{url.port}\n"
    assert answers["attacker.example"] == (403, refusal.encode())
    assert answers[f"attacker.example:{url.port}"] == (403, refusal.encode())
    assert answers[f"localhost:{url.port}"][0] == answers[url.netloc][0] == 200


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_or_sigterm_stops_browse_with_128_plus_the_signal(demo_db, signum, status):
    process, _ = browsing(demo_db)
    assert stopped(process, signum) == (status, "")


def test_a_time_limit_stops_the_query_not_just_the_function(demo_db):
    """A progress handler (how Datasette limits time) may stop the function's own lookup: the
    query calling it must then fail as interrupted, which Datasette reports as its time limit,
    not as "user-defined function raised exception". Here the handler stops the k-th SQLite
    instruction, for every k from the query's first to past its last."""
    db = sqlite3.connect(f"file:{demo_db}?mode=ro", uri=True)
    register(db)
    errors = set()
    for k in range(1, 100):
        steps = iter(range(k, 0, -1))
        db.set_progress_handler(lambda steps=steps: next(steps, 0) == 1, 1)
        try:
            db.execute("SELECT conversation_text(1)").fetchall()
        except sqlite3.OperationalError as error:
            errors.add(str(error))
    db.set_progress_handler(None, 1)
    assert errors == {"interrupted"}
    assert db.execute("SELECT length(conversation(1)) > 0").fetchone() == (1,)


def test_browse_names_what_is_wrong(demo_db, tmp_path):
    missing = invoke("browse", "--db", tmp_path / "absent.db")
    assert missing.returncode == 1 and "absent.db: no such file" in missing.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = nanotasks("browse", "--db", demo_db, "--port", port, check=False)
    assert busy.returncode == 1 and "Traceback" not in busy.stderr
    assert busy.stderr.strip() == (
        f"Error: cannot listen on 127.0.0.1:{port} (Address already in use): "
        f"choose another port with --port N, or --port 0 for a free one"
    )
