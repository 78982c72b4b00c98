"""`nanotasks browse`: Datasette with pages for looking at a nanotasks file. It is a Datasette
plugin (the `datasette` entry point nanotasks_browse in pyproject.toml), so a plain
`datasette demo.db` has the pages too. For each nanotasks database D:

    /D/-/nanotasks                             every split: examples, characters, provenance,
                                               lengths
    /D/-/nanotasks/TASK/SUBSET/SPLIT/POSITION  one example as a transcript
    /D/-/nanotasks/contamination               evaluation x training splits: a heatmap of
                                               overlaps
    /D/-/nanotasks/contamination/EVAL/TRAIN    the overlapping pairs of two splits (splits.id)

and the `examples`, `example_data` and `overlaps` tables, and query results holding a
conversation(id), show transcripts and links where they had blobs and ids. Every query goes
through Datasette's connections, so its read-only mode and time limit hold; bodies are read
with the conversation() SQL function (store/plugins.py). The pages know no benchmark: they
show what the file holds (browse/transcript.py says what is marked).
"""

import asyncio
import bisect
import json
import socket
from urllib.parse import quote, unquote

from datasette import hookimpl
from datasette.utils import tilde_decode
from datasette.utils.asgi import Forbidden, NotFound, Response
from markupsafe import Markup

from nanotasks.browse.transcript import shared_runs, transcript
from nanotasks.store.schema import APPLICATION_ID, EVAL_SPLITS

PAGE_FOLD = 1500  # a message longer than this many characters is folded on a page
CELL_FOLD = 300  # and in a table's cell
PAIRS_SHOWN = 50  # overlapping pairs shown for one cell of the heatmap
BAR_HEIGHT = 28  # pixels of a histogram's tallest bar
# The start page reads every example's length: longer than Datasette's limit for a query typed in
STATISTICS_TIME_LIMIT_MS = 30_000


def serve(path, port, echo):
    """Datasette on 127.0.0.1:`port` (0: a free one) with the file at `path`, read-only, until
    interrupted. Raises OSError when the port is taken. Only requests addressed to the server
    (127.0.0.1:PORT or localhost:PORT) are answered; see only_hosts."""
    import uvicorn
    from datasette.app import Datasette

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen()  # from now on a visit waits for the server rather than being refused
    datasette = Datasette(immutables=[str(path)])
    asyncio.run(datasette.invoke_startup())
    start = f"{datasette.urls.database(datasette.get_database().name)}/-/nanotasks"
    port = listener.getsockname()[1]
    hosts = [f"{name}:{port}" for name in ("127.0.0.1", "localhost")]
    if port == 80:  # the port a browser leaves out
        hosts += ["127.0.0.1", "localhost"]
    app = announced(
        only_hosts(datasette.app(), hosts),
        lambda: echo(f"http://127.0.0.1:{port}{start}  (Ctrl-C to stop)"),
    )
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    uvicorn.Server(config).run(sockets=[listener])


def announced(app, announce):
    """The ASGI `app`, calling `announce()` once the server has started it (its lifespan
    startup): by then uvicorn handles Ctrl-C and SIGTERM itself, so the address is printed
    only when stopping the server is the server's own orderly shutdown."""

    async def started(scope, receive, send):
        if scope["type"] != "lifespan":
            return await app(scope, receive, send)

        async def send_then_announce(message):
            await send(message)
            if message["type"] == "lifespan.startup.complete":
                announce()

        return await app(scope, receive, send_then_announce)

    return started


def only_hosts(app, hosts):
    """The ASGI `app`, answering only HTTP requests whose Host header is one of `hosts`; any
    other gets 403. A web page the user visits may point a name of its own at 127.0.0.1 (DNS
    rebinding) and read what its requests return: those requests name the page's host."""
    allowed = {host.encode() for host in hosts}

    async def guarded(scope, receive, send):
        host = dict(scope.get("headers", ())).get(b"host")
        if scope["type"] != "http" or host in allowed:
            return await app(scope, receive, send)
        body = f"nanotasks browse answers only {' and '.join(hosts)}\n".encode()
        headers = [(b"content-type", b"text/plain; charset=utf-8")]
        await send({"type": "http.response.start", "status": 403, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return guarded


@hookimpl
def register_routes():
    pages = r"^/(?P<database>[^/]+)/-/nanotasks"
    return [
        (pages + "$", overview),
        (pages + "/contamination$", contamination),
        (pages + r"/contamination/(?P<eval>\d+)/(?P<train>\d+)$", pairs),
        (
            pages + r"/(?P<task>[^/]+)/(?P<subset>[^/]+)/(?P<split>[^/]+)/(?P<position>\d+)$",
            example,
        ),
    ]


@hookimpl
def extra_css_urls(datasette):
    return [datasette.urls.static_plugins("nanotasks", "browse.css")]


@hookimpl
def database_actions(datasette, database):
    async def links():
        if await _is_nanotasks(datasette.get_database(database)):
            base = f"{datasette.urls.database(database)}/-/nanotasks"
            return [
                {"href": base, "label": "Benchmarks and splits"},
                {"href": f"{base}/contamination", "label": "Contamination"},
            ]

    return links


@hookimpl
def render_cell(row, value, column, table, database, datasette):
    """A transcript for a body, a link for an example id, a transcript for a conversation(id)."""
    if (
        table in ("examples", "example_data")
        and column == "body"
        and "id" in row.keys()
        or table == "overlaps"
        and column in ("eval_id", "train_id")
    ):
        example_id = row["id"] if column == "body" else value
        return _table_cell(datasette, datasette.get_database(database), example_id, column)
    if table is None and isinstance(value, str) and value.startswith('{"messages":'):
        try:
            messages = transcript(json.loads(value), fold_at=CELL_FOLD)
        except (ValueError, LookupError, TypeError, AttributeError):  # JSON, but not a conversation
            return None
        return _fragment(datasette, "_nanotasks_cell.html", {"messages": messages})


async def _table_cell(datasette, db, example_id, column):
    if not await _is_nanotasks(db):
        return None
    split, position = _locate(await _splits(db), example_id)
    link = {"url": _example_url(datasette, db, split, position), "label": _label(split, position)}
    if column != "body":
        return Markup('<a href="{url}">{label}</a>').format(**link)
    conversation, answer = await _conversation(db, example_id)
    return await _fragment(
        datasette,
        "_nanotasks_cell.html",
        {"messages": transcript(conversation, answer, fold_at=CELL_FOLD), "link": link},
    )


async def overview(datasette, request):
    db = await _database(datasette, request)
    splits = sorted(await _splits(db), key=lambda s: (s["task"], s["subset"], s["split"]))
    for split in splits:
        lengths = (
            await db.execute(
                "SELECT characters, count(*) FROM example_data WHERE id BETWEEN ? AND ? "
                "GROUP BY characters",
                [split["first_example"], split["first_example"] + split["rows"] - 1],
                custom_time_limit=STATISTICS_TIME_LIMIT_MS,
            )
        ).rows
        split["lengths"] = {characters: count for characters, count in lengths}
        split["characters"] = sum(characters * count for characters, count in lengths)
        split["url"] = _example_url(datasette, db, split, 0)
    buckets = [n.bit_length() for split in splits for n in split["lengths"]] or [0]
    for split in splits:
        split["bars"] = _histogram(split.pop("lengths"), min(buckets), max(buckets))
    axis = (splits[0]["bars"][0]["low"], splits[0]["bars"][-1]["high"]) if splits else None
    files = [
        dict(row)
        for row in await db.execute(
            "SELECT name, repo, revision, sha256, size FROM files ORDER BY name"
        )
    ]
    overlapping = (await db.execute("SELECT count(DISTINCT eval_id) FROM overlaps")).single_value()
    return await _page(
        datasette,
        request,
        db,
        "nanotasks_overview.html",
        {"splits": splits, "files": files, "overlapping": overlapping, "axis": axis},
    )


def _histogram(lengths, first, last):
    """Bars of a histogram of example lengths on a log scale shared by every split: bar b
    counts the lengths of b binary digits, 2^(b-1) to 2^b - 1 characters."""
    counts = dict.fromkeys(range(first, last + 1), 0)
    for characters, count in lengths.items():
        counts[characters.bit_length()] += count
    tallest = max(counts.values()) or 1
    return [
        {
            "low": 1 << bucket >> 1,
            "high": (1 << bucket) - 1,
            "count": count,
            "height": max(round(BAR_HEIGHT * count / tallest), 1 if count else 0),
        }
        for bucket, count in counts.items()
    ]


async def example(datasette, request):
    db = await _database(datasette, request)
    names = [unquote(request.url_vars[name]) for name in ("task", "subset", "split")]
    splits = await _splits(db)
    split = next((s for s in splits if [s["task"], s["subset"], s["split"]] == names), None)
    position = int(request.url_vars["position"])
    if split is None or position >= split["rows"]:
        raise NotFound(f"{db.name} has no example {position} of {' '.join(names)}")
    example_id = split["first_example"] + position
    conversation, answer = await _conversation(db, example_id)
    details = (
        await db.execute(
            "SELECT e.source_row, e.characters, s.name AS subject FROM example_data e "
            "LEFT JOIN subjects s ON s.id = e.subject_id WHERE e.id = ?",
            [example_id],
        )
    ).first()
    return await _page(
        datasette,
        request,
        db,
        "nanotasks_example.html",
        {
            "split": split,
            "position": position,
            "answer": answer,
            "details": dict(details),
            "extras": {k: v for k, v in conversation.items() if k != "messages"},
            "messages": transcript(conversation, answer, fold_at=PAGE_FOLD),
            "overlaps": await _overlaps_of(datasette, db, splits, example_id),
            "previous": _example_url(datasette, db, split, position - 1) if position else None,
            "next": _example_url(datasette, db, split, position + 1)
            if position + 1 < split["rows"]
            else None,
            "row_url": (
                f"{datasette.urls.table(db.name, 'examples')}?{_query(split)}&position={position}"
            ),
        },
    )


async def _overlaps_of(datasette, db, splits, example_id):
    """The examples an example overlaps, on either side, each with its link and the link to
    the pairs of its two splits."""
    overlaps = []
    for eval_id, train_id, kind in await db.execute(
        "SELECT eval_id, train_id, kind FROM overlaps WHERE eval_id = ? OR train_id = ?",
        [example_id] * 2,
    ):
        other, other_position = _locate(splits, train_id if eval_id == example_id else eval_id)
        overlaps.append(
            {
                "kind": kind,
                "label": _label(other, other_position),
                "url": _example_url(datasette, db, other, other_position),
                "pairs": _pairs_url(
                    datasette, db, _locate(splits, eval_id)[0], _locate(splits, train_id)[0]
                ),
            }
        )
    return overlaps


CELLS = """
SELECT e.id, t.id, count(DISTINCT o.eval_id), count(*),
       count(DISTINCT CASE o.kind WHEN 'exact' THEN o.eval_id END)
FROM overlaps o
JOIN splits e ON o.eval_id BETWEEN e.first_example AND e.first_example + e.rows - 1
JOIN splits t ON o.train_id BETWEEN t.first_example AND t.first_example + t.rows - 1
GROUP BY e.id, t.id"""


async def contamination(datasette, request):
    db = await _database(datasette, request)
    splits = sorted(await _splits(db), key=lambda s: (s["task"], s["subset"], s["split"]))
    evaluation = [s for s in splits if s["split"] in EVAL_SPLITS]
    training = [s for s in splits if s["split"] not in EVAL_SPLITS]
    cells = {(e, t): counts for e, t, *counts in await db.execute(CELLS)}
    rows = []
    for split in evaluation:
        row = []
        for other in training:
            examples, pairs, exact = cells.get((split["id"], other["id"]), (0, 0, 0))
            share = examples / split["rows"]
            row.append(
                {
                    "examples": examples,
                    "pairs": pairs,
                    "exact": exact,
                    "share": share,
                    "colour": _heat(share) if examples else "",
                    "url": _pairs_url(datasette, db, split, other),
                }
            )
        rows.append({"split": split, "cells": row})
    return await _page(
        datasette, request, db, "nanotasks_contamination.html", {"rows": rows, "training": training}
    )


def _heat(share):
    """A cell's background: white to deep red as the share of the evaluation split found grows;
    the square root makes a few examples visible."""
    lightness = 96 - 56 * share**0.5
    text = "#fff" if lightness < 60 else "#000"
    return f"background: hsl(4, 80%, {lightness:.0f}%); color: {text}"


async def pairs(datasette, request):
    db = await _database(datasette, request)
    splits = {s["id"]: s for s in await _splits(db)}
    evaluation, training = (splits.get(int(request.url_vars[k])) for k in ("eval", "train"))
    if evaluation is None or training is None:
        raise NotFound(f"{db.name} has no such splits")
    ranges = [
        evaluation["first_example"],
        evaluation["first_example"] + evaluation["rows"] - 1,
        training["first_example"],
        training["first_example"] + training["rows"] - 1,
    ]
    where = "FROM overlaps WHERE eval_id BETWEEN ? AND ? AND train_id BETWEEN ? AND ?"
    total = (await db.execute(f"SELECT count(*) {where}", ranges)).single_value()
    shown = []
    for eval_id, train_id, kind in await db.execute(
        f"SELECT eval_id, train_id, kind {where} ORDER BY eval_id, train_id LIMIT {PAIRS_SHOWN}",
        ranges,
    ):
        sides = []
        conversations = [await _conversation(db, eval_id), await _conversation(db, train_id)]
        shared = shared_runs(conversations[0][0], conversations[1][0])
        for (conversation, answer), split, example_id in zip(
            conversations, (evaluation, training), (eval_id, train_id), strict=True
        ):
            position = example_id - split["first_example"]
            sides.append(
                {
                    "label": _label(split, position),
                    "url": _example_url(datasette, db, split, position),
                    "answer": answer,
                    "messages": transcript(conversation, answer, shared, kind == "exact"),
                }
            )
        shown.append({"kind": kind, "sides": sides})
    return await _page(
        datasette,
        request,
        db,
        "nanotasks_pairs.html",
        {"evaluation": evaluation, "training": training, "total": total, "pairs": shown},
    )


async def _database(datasette, request):
    """The nanotasks database the page is about, if the visitor may see it."""
    try:
        db = datasette.get_database(route=tilde_decode(request.url_vars["database"]))
    except KeyError:
        raise NotFound("no such database") from None
    if not await datasette.permission_allowed(
        request.actor, "view-database", db.name, default=True
    ):
        raise Forbidden("view-database")
    if not await _is_nanotasks(db):
        raise NotFound(f"{db.name} is not a nanotasks file")
    return db


async def _is_nanotasks(db):
    return (await db.execute("PRAGMA application_id")).single_value() == APPLICATION_ID


async def _splits(db):
    return [
        dict(row)
        for row in await db.execute(
            "SELECT id, task, subset, split, first_example, rows, repo, config, source_split, "
            "revision, sha256, stored_bytes FROM splits ORDER BY first_example"
        )
    ]


def _locate(splits, example_id):
    """The split (of `splits`, in file order) holding `example_id`, and its position there."""
    split = splits[bisect.bisect_right([s["first_example"] for s in splits], example_id) - 1]
    return split, example_id - split["first_example"]


async def _conversation(db, example_id):
    body, answer = (
        await db.execute(
            "SELECT conversation(id), answer FROM example_data WHERE id = ?", [example_id]
        )
    ).first()
    return json.loads(body), answer


def _label(split, position):
    return f"{split['task']} {split['subset']}/{split['split']} #{position}"


def _example_url(datasette, db, split, position):
    names = "/".join(quote(split[k], safe="") for k in ("task", "subset", "split"))
    return f"{datasette.urls.database(db.name)}/-/nanotasks/{names}/{position}"


def _pairs_url(datasette, db, evaluation, training):
    contamination = f"{datasette.urls.database(db.name)}/-/nanotasks/contamination"
    return f"{contamination}/{evaluation['id']}/{training['id']}"


def _query(split):
    return "&".join(f"{k}={quote(split[k], safe='')}" for k in ("task", "subset", "split"))


async def _page(datasette, request, db, template, context):
    context = {
        "database": db.name,
        "pages": f"{datasette.urls.database(db.name)}/-/nanotasks",
        **context,
    }
    return Response.html(await datasette.render_template(template, context, request=request))


async def _fragment(datasette, template, context):
    return Markup(await datasette.jinja_env.get_template(template).render_async(context))
