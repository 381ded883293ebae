#!/usr/bin/env python3
"""enrich.py - the GeoIP case of stagecost.py, under its earlier name:
benchmarks/enrich.py [ARGS] is benchmarks/stagecost.py --stage geoip [ARGS]."""
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
os.execv(sys.executable, [sys.executable, os.path.join(here, "stagecost.py"), "--stage", "geoip",
                          *sys.argv[1:]])
