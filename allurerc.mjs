// Allure 3 config for pbxcheck's reports: `npx allure@3 generate reports/allure-results`, then
// `npx allure@3 open` (see the README, "Reading the reports").
//
// pbxcheck writes one Allure result per check *per clause* (src/pbxcheck/checks/allure_clauses.py):
// parentSuite = the contract's section, suite = the clause ID and its summary, so the tree reads
// section > clause > check, and a check's failure sits only under the clause it failed, as in
// clauses.json. Labels it adds: clause, outcome (passed, failed, blocked, not-applicable,
// observation), finding (a severity, one per finding), unspecified ("observed <what>").
// A plain object (defineConfig from "allure" is the identity): `npx allure@3` then needs no
// node_modules here.
export default {
  name: "pbxcheck: clauses",
  output: "./reports/allure-report",
  plugins: {
    awesome: {
      options: {
        reportName: "pbxcheck: clauses",
        reportLanguage: "en",
        singleFile: true, // index.html carries its data: it opens from disk too
        groupBy: ["parentSuite", "suite"],
      },
    },
  },
  categories: [
    { name: "Failed clauses", matchers: { statuses: ["failed", "broken"] }, groupBy: [{ label: "clause" }] },
    {
      name: "Findings (hardening)",
      matchers: { labels: { finding: /.+/ } },
      groupBy: [{ label: "finding" }, { label: "clause" }],
    },
    {
      name: "Unspecified: observed answers",
      matchers: { labels: { unspecified: /.+/ } },
      groupBy: [{ label: "clause" }],
    },
    {
      name: "Blocked by another clause",
      matchers: { labels: { outcome: "blocked" } },
      groupBy: [{ label: "clause" }],
    },
    {
      name: "Not applicable to this target",
      matchers: { labels: { outcome: "not-applicable" } },
      groupBy: [{ label: "clause" }],
    },
  ],
};
