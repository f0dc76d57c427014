# Fills a stage index with a synthetic batch "big" for scripts/bench.sh report: 20 mailboxes x
# 10 folders x 1,000 messages (log-normal sizes, 1 % over the size cap), no blobs.
# Usage: python3 scripts/report-bench-index.py STAGE/index.sqlite
import sqlite3, sys, random
db = sqlite3.connect(sys.argv[1])
random.seed(1)
db.execute("INSERT INTO batches (name, endpoint_id) VALUES ('big', 1)")
bid = db.execute("SELECT id FROM batches WHERE name='big'").fetchone()[0]
n = 0
for mb in range(20):
    db.execute("INSERT INTO mailboxes (batch_id, email, login_name, state, last_sync_at) VALUES (?, ?, ?, 'Synced', '2026-01-01T00:00:00Z')", (bid, f"user{mb}@x.test", f"user{mb}"))
    mid = db.execute("SELECT last_insert_rowid()").fetchone()[0]
    for f in range(10):
        db.execute("INSERT INTO folders (mailbox_id, wire_name, name, uidvalidity, source_messages, source_checked_at) VALUES (?, ?, ?, 7, 1000, '2026-01-01T00:00:00Z')", (mid, f"F{f}".encode(), f"F{f}"))
        fid = db.execute("SELECT last_insert_rowid()").fetchone()[0]
        rows = []
        for uid in range(1, 1001):
            n += 1
            size = int(random.lognormvariate(9, 1.5))
            skipped = random.random() < 0.01
            state = 'skipped_size' if skipped else 'staged'
            blob = None if skipped else f"{n:064x}"
            rows.append((fid, uid, state, 'over cap' if skipped else None, blob, size, f"2026-01-01T00:{(n//1000)%60:02d}:{n%60:02d}Z"))
        db.executemany("INSERT INTO messages (folder_id, uidvalidity, uid, state, reason, blob, size, staged_at) VALUES (?, 7, ?, ?, ?, ?, ?, ?)", rows)
db.commit()
print(n)
