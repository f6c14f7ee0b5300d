"""Crawlee for Python 1.11.0's AutoscaledPool crawling the same site as `crawl-client run` (for
`cargo xtask crawl-bench`).

Usage: python crawlee_py_crawl.py BASE PAGES OUT_JSON

The pool runs with Crawlee's default settings and system status, as a Crawlee user gets them. The crawl loop
is the Rust crawler's: start from page 0, follow each page's links once, and put a page answered 429 straight
back in the queue (Crawlee's client signal counts only its own storage API's errors, so the pool never hears
of the site's 429s). Writes the same JSON fields as `crawl-client`, with a timeline every 100 ms.
"""
import asyncio
import json
import re
import sys
import time
from collections import deque

import httpx
from crawlee._autoscaling import AutoscaledPool, Snapshotter, SystemStatus

LINK = re.compile(rb'href="/page/(\d+)"')


async def main(base: str, pages: int, out: str) -> None:
    queue = deque([0])
    seen = {0}
    in_flight = 0
    fetched = 0
    throttled = 0
    failed = 0
    timeline = []
    started = time.perf_counter()
    # One connection per request, like the Rust client against this server (it closes after each response).
    limits = httpx.Limits(max_keepalive_connections=0, max_connections=None)
    async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:

        async def run_task() -> None:
            nonlocal in_flight, fetched, throttled, failed
            # Crawlee starts a task for each `is_task_ready` that said yes, and another task may have taken the
            # page since: then there is nothing to do.
            if not queue:
                return
            page = queue.popleft()
            in_flight += 1
            try:
                res = await client.get(f'{base}{page}')
                if res.status_code == 200:
                    fetched += 1
                    for m in LINK.finditer(res.content):
                        q = int(m.group(1))
                        if q < pages and q not in seen:
                            seen.add(q)
                            queue.append(q)
                elif res.status_code == 429:
                    throttled += 1
                    queue.append(page)
                else:
                    failed += 1
                    queue.append(page)
            except httpx.HTTPError:
                failed += 1
                queue.append(page)
            finally:
                in_flight -= 1

        async def is_task_ready() -> bool:
            return len(queue) > 0

        async def is_finished() -> bool:
            return len(queue) == 0 and in_flight == 0

        snapshotter = Snapshotter.from_config()
        async with snapshotter:
            pool = AutoscaledPool(
                system_status=SystemStatus(snapshotter),
                run_task_function=run_task,
                is_task_ready_function=is_task_ready,
                is_finished_function=is_finished,
            )

            async def watch() -> None:
                while True:
                    timeline.append({
                        't': time.perf_counter() - started,
                        'current': pool.current_concurrency,
                        'desired': pool.desired_concurrency,
                        'fetched': fetched,
                        'throttled': throttled,
                    })
                    await asyncio.sleep(0.1)

            watcher = asyncio.create_task(watch())
            await pool.run()
            watcher.cancel()
    wall = time.perf_counter() - started
    peak = max((p['current'] for p in timeline), default=0)
    result = {
        'system': 'crawlee-python',
        'pages': pages,
        'fetched': fetched,
        'wall_s': wall,
        'pages_per_s': fetched / wall,
        'throttled': throttled,
        'throttled_per_page': throttled / max(fetched, 1),
        'failed': failed,
        'peak_concurrency': peak,
        'timeline': timeline,
    }
    with open(out, 'w') as f:
        json.dump(result, f)
    print(f'crawlee-python pages_per_s={fetched / wall:.1f} throttled={throttled} failed={failed}')


if __name__ == '__main__':
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
