"""Reports: what a run found, written for people and for tools.

``conformance`` collects every lab's checks and reachability matrix during
the run; ``compare`` collects the benchmark records; ``across`` puts one
topology's verdicts and figures side by side along an axis (providers,
engines); ``allure`` merges runs into the Allure HTML report.
"""
