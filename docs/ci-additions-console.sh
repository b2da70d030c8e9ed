# Lines for .ci/run (the lead merges them): Chromium for the console's
# browser tests (internal/console, driven through chromedp). Without it
# those tests skip; STRAIT_REQUIRE_CHROMIUM=1 makes them fail instead, so
# CI cannot pass with the console untested.

# 1. With the other checks at the top of the install block:
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"

# 2. With the other "could not be installed" checks after it:
command -v chromium >/dev/null || { echo "chromium could not be installed" >&2; exit 1; }
export STRAIT_REQUIRE_CHROMIUM=1

# 3. And in the comment above the block, the reason:
# chromium is the browser the console's tests drive (internal/console).
