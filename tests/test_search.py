"""Code search: customer wording in, complete billable codes out."""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from consultant.codes import db
from consultant.codes.db import CodeDatabaseError
from consultant.codes.importing import Loaded, Progress, run_import
from consultant.codes.search import MIN_SCORE, CodeSearch, SearchHit
from consultant.codes.store import CodeStore
from consultant.codes.systems import (
    BILLABLE,
    HCPCS,
    HCPCS_SHAPE,
    ICD10CM,
    ICD10PCS,
    ICD10PCS_SHAPE,
)

DATA_SETS = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def search(code_db: Path) -> CodeSearch:
    # Read-only: a drafting process must not need to write to search.
    return CodeSearch(CodeStore(db.connect(code_db, readonly=True)))


def first(search: CodeSearch, text: str, **kwargs) -> str:
    hits = search.search(text, **kwargs)
    assert hits, f"no hit for {text!r}"
    return hits[0].code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("HTN", "I10"),
        ("DM2", "E11.9"),
        ("T2DM w/ hyperglycemia", "E11.65"),
        ("CKD stage 3a", "N18.31"),
        ("ESRD", "N18.6"),
        ("COPD with acute exacerbation", "J44.1"),
        ("afib", "I48.91"),
        ("NSTEMI", "I21.4"),
        ("BPH with LUTS", "N40.1"),
        ("OSA", "G47.33"),
        ("hx of MI", "I25.2"),
    ],
)
def test_abbreviations_are_expanded(search: CodeSearch, text: str, code: str) -> None:
    assert first(search, text) == code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("diabeties type 2", "E11.9"),
        ("pnemonia", "J18.9"),
        ("hypertention", "I10"),
    ],
)
def test_misspellings_are_corrected(search: CodeSearch, text: str, code: str) -> None:
    assert first(search, text) == code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("osteoarthritis of left knee", "M17.12"),
        ("osteoarthritis of right knee", "M17.11"),
        ("bilateral knee osteoarthritis", "M17.0"),
        ("pain in right shoulder", "M25.511"),
        ("lt shoulder pain", "M25.512"),
        ("stage 3 pressure ulcer of left heel", "L89.623"),
    ],
)
def test_laterality_and_stage_pick_the_code(search: CodeSearch, text: str, code: str) -> None:
    assert first(search, text) == code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("closed fracture of right distal radius", "S52.501A"),
        ("closed fracture of right distal radius initial encounter", "S52.501A"),
        ("fracture of right distal radius subsequent encounter routine healing", "S52.501D"),
        ("fracture of right distal radius subsequent encounter delayed healing", "S52.501G"),
        ("fracture of right distal radius with nonunion", "S52.501K"),
        ("fracture of right distal radius sequela", "S52.501S"),
        ("open fracture of right distal radius initial encounter", "S52.501B"),
        ("right ankle sprain subsequent encounter", "S93.401D"),
        # "closed" chooses the encounter: a humerus's subsequent encounters do not say it
        ("L humerus shaft fx, displaced transverse, closed, delayed healing", "S42.322G"),
        # healing is said of every subsequent encounter; malunion decides
        ("L clavicle shaft fx, displaced, healed in poor position, malunion", "S42.022P"),
        # how long since is no code's word
        ("R scaphoid fx, 5 months out, nonunion", "S62.001K"),
        ("adverse effect of amoxicillin", "T36.0X5A"),
        # a cast changed or taken off is care after active treatment (I.C.19.a)
        ("R distal radius fx, cast removal visit", "S52.501D"),
        ("R distal radius fx, cast change", "S52.501D"),
    ],
)
def test_encounter_words_pick_the_seventh_character(
    search: CodeSearch, text: str, code: str
) -> None:
    assert first(search, text) == code


@pytest.mark.parametrize(
    "text",
    [
        "diabetes",
        "fracture of femur",
        "pressure ulcer",
        "pregnancy",
        "poisoning by antidepressant",
        "malignant neoplasm of breast",
        "asthma",
        "knee replacement",
    ],
)
def test_only_complete_billable_codes_are_suggested(search: CodeSearch, text: str) -> None:
    hits = search.search(text, limit=25)
    assert hits
    for hit in hits:
        assert search.store.lookup(hit.code, hit.system).status == BILLABLE, hit


def test_hits_are_ranked_and_unique(search: CodeSearch) -> None:
    hits = search.search("type 2 diabetes with chronic kidney disease", limit=20)
    keys = [(h.system, h.code) for h in hits]
    assert len(keys) == len(set(keys))
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].code == "E11.22"


def test_system_filter(search: CodeSearch) -> None:
    for system, text in (
        (ICD10CM, "knee osteoarthritis"),
        (ICD10PCS, "knee replacement"),
        (HCPCS, "knee orthosis"),
    ):
        hits = search.search(text, system=system, limit=5)
        assert hits, system
        assert {h.system for h in hits} == {system}
    assert first(search, "laparoscopic appendectomy", system=ICD10PCS) == "0DTJ4ZZ"
    assert first(search, "folding walker with wheels", system=HCPCS) == "E0143"


def test_limit(search: CodeSearch) -> None:
    assert len(search.search("diabetes", limit=3)) == 3
    assert len(search.search("diabetes", limit=1)) == 1
    assert search.search("diabetes", limit=0) == []


@pytest.mark.parametrize("text", ["", "   ", "!!! ???", "qwxzv plorp", "the of and"])
def test_empty_or_garbage_query_returns_nothing(search: CodeSearch, text: str) -> None:
    assert search.search(text) == []


def test_words_no_code_covers_well_still_lead_somewhere(search: CodeSearch) -> None:
    """A coder's wording the titles barely share is listed at its low score, not dropped:
    the right code is usually among the weak leads."""
    hits = search.search("store and forward images reviewed")
    assert hits[0].code == "G2010" and hits[0].score < MIN_SCORE
    assert "A0434" in [h.code for h in search.search("SCT ambulance transfer, ICU-level crew")]
    # a phrase some code covers well lists no weak ones beside it
    assert all(h.score >= MIN_SCORE for h in search.search("store and forward"))


def test_hit_to_dict(search: CodeSearch) -> None:
    hit = search.search("essential hypertension", limit=1)[0]
    assert isinstance(hit, SearchHit)
    assert hit.to_dict() == {
        "code": "I10",
        "system": ICD10CM,
        "title": "Essential (primary) hypertension",
        "score": hit.score,
        "open_axes": (),
        "alongside": False,
    }


# -- index codes that are incomplete or unknown -------------------------------------------


def _made_up_index(conn: sqlite3.Connection, path: Path, progress: Progress) -> Loaded:
    """Index rows for invented words, pointing where real index codes may point."""
    rows = [
        ("L89.15", "Zorblex sore"),  # a header: needs its 5th/6th character
        ("S52.501", "Frimble break"),  # needs a 7th character
        ("E11.999", "Quuxitis"),  # no such code in the tabular
    ]
    conn.executemany(
        "INSERT INTO search_terms (system, code, text, source, code_set)"
        " VALUES (?, ?, ?, 'index', 'test-index')",
        [(ICD10CM, code, text) for code, text in rows],
    )
    return Loaded(version="test", effective=None, row_count=len(rows))


@pytest.fixture(scope="module")
def extended(code_db: Path, tmp_path_factory: pytest.TempPathFactory) -> CodeSearch:
    path = tmp_path_factory.mktemp("extended") / "codes.sqlite"
    shutil.copy(code_db, path)
    conn = db.connect(path)
    source = path.with_name("made-up-index.txt")
    source.write_text("made-up index rows\n")
    run_import(conn, "test-index", source, _made_up_index)
    return CodeSearch(CodeStore(conn))


def test_incomplete_index_code_is_completed(extended: CodeSearch) -> None:
    codes = [h.code for h in extended.search("zorblex sore")]
    assert codes[0] == "L89.159"  # unspecified stage when the query names none
    assert "L89.15" not in codes
    assert first(extended, "zorblex sore stage 3") == "L89.153"
    assert first(extended, "frimble break") == "S52.501A"
    assert first(extended, "frimble break subsequent encounter") == "S52.501D"


def test_index_code_missing_from_the_tabular_is_dropped(extended: CodeSearch) -> None:
    assert extended.search("quuxitis") == []


def test_stale_search_index_is_rebuilt_or_reported(code_db: Path, tmp_path: Path) -> None:
    path = tmp_path / "codes.sqlite"
    shutil.copy(code_db, path)
    with closing(sqlite3.connect(path)) as conn:  # as if HCPCS came after the last build
        conn.execute("DELETE FROM meta WHERE key = 'search_index:hcpcs'")
        conn.commit()
    with pytest.raises(CodeDatabaseError, match="write access"):
        CodeSearch(CodeStore(db.connect(path, readonly=True))).search("walker")
    writable = CodeSearch(CodeStore(db.connect(path)))
    assert first(writable, "folding walker with wheels") == "E0143"


# -- quality guard ----------------------------------------------------------------------


def read_set(pattern: str) -> list[tuple[str, str, str]]:
    """(phrase, code, area) of the tests/data/search_eval_PATTERN.tsv files."""
    triples = []
    for path in sorted(DATA_SETS.glob(f"search_eval_{pattern}.tsv")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                phrase, code, *area = line.split("\t")
                triples.append((phrase, code, area[0] if area else "condition"))
    return triples


def _system(code: str) -> str:
    if HCPCS_SHAPE.fullmatch(code):
        return HCPCS
    return ICD10PCS if ICD10PCS_SHAPE.fullmatch(code) else ICD10CM


def test_eval_sets_hold_billable_codes_over_every_area(search: CodeSearch) -> None:
    dev, holdout = read_set("dev*"), read_set("holdout*")
    assert len(dev) >= 1500 and len(holdout) >= 1000
    areas = {area for _, _, area in dev}
    assert {"negation", "drug", "external_cause", "z_code", "pcs", "hcpcs_supply"} <= areas
    for phrase, code, _ in dev + holdout:
        assert search.store.lookup(code, _system(code)).status == BILLABLE, (phrase, code)


# Achieved on the development set, blind (bench/search_eval.py prints them, with the
# holdout's): the guard is a little below, so tuning one area cannot quietly cost another.
_FLOORS = {ICD10CM: (0.89, 0.95), HCPCS: (0.83, 0.95), ICD10PCS: (0.96, 0.98)}


def test_dev_set_accuracy_does_not_regress(search: CodeSearch) -> None:
    results: dict[str, list[tuple[bool, bool]]] = {}
    for phrase, code, _ in read_set("dev*"):
        codes = [h.code for h in search.search(phrase, limit=5)]
        results.setdefault(_system(code), []).append((codes[:1] == [code], code in codes))
    for system, (first_floor, five_floor) in _FLOORS.items():
        got = results[system]
        assert sum(r[0] for r in got) / len(got) >= first_floor, system
        assert sum(r[1] for r in got) / len(got) >= five_floor, system


def test_a_type_number_does_not_match_a_stage_range(search: CodeSearch) -> None:
    # I12.9's "stage 1 through stage 4" spans 2; the "2" of "type 2" must not match it.
    codes = [h.code for h in search.search("type 2 diabetes with diabetic CKD stage 3a")]
    assert codes[:2] == ["E11.22", "N18.31"]


def test_an_acuity_a_subterm_states_is_not_overridden_by_its_parents_modifier(
    search: CodeSearch,
) -> None:
    # The index's "Failure, heart (acute)" gave chronic failure the "acute" of "acute on
    # chronic", tying it with the acute-on-chronic code.
    for text, code, chronic in (
        ("acute on chronic HFpEF", "I50.33", "I50.32"),
        ("acute on chronic systolic CHF", "I50.23", "I50.22"),
        # an exacerbation of a chronic condition is its acute-on-chronic form
        ("exacerbation of chronic systolic heart failure", "I50.23", "I50.22"),
    ):
        scores = {h.code: h.score for h in search.search(text)}
        assert max(scores, key=scores.__getitem__) == code
        assert scores.get(chronic, 0.0) < 0.9 * scores[code]


# -- how coders write -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        # a denial picks the "without" code, never the "with" one
        ("asthma, no status asthmaticus", "J45.909"),
        ("alcohol dependence in remission", "F10.21"),
        ("former smoker", "Z87.891"),
        # the Table of Drugs: substance (a brand read as its generic), then the column
        ("accidental Norco overdose", "T40.2X1A"),
        ("coumadin underdosing", "T45.516A"),
        ("intentional overdose of xanax", "T42.4X2A"),
        ("tylenol OD accidental, subsequent visit", "T39.1X1D"),
        # external causes and Z codes
        ("bitten by a dog", "W54.0XXA"),
        ("fell from a ladder at home", "W11.XXXA"),
        ("hx of breast cancer", "Z85.3"),
        ("on long-term aspirin", "Z79.82"),
        # a system cue steers: the diagnosis, not the service
        ("dx code for a screening colonoscopy", "Z12.11"),
        # HCPCS from plain words, brands and doses
        ("B12 shot", "J3420"),
        ("J code for Toradol 30mg", "J1885"),
        ("Rocephin 250 mg IM", "J0696"),
        ("HCPCS for a standard wheelchair", "K0001"),
        ("IPPE", "G0402"),
        ("intensive behavioral therapy for obesity", "G0447"),
        ("nebulizer", "E0570"),
        # a bone names its place: "shaft of humerus, left arm"; the scaphoid is the wrist's
        ("fx left humerus shaft initial", "S42.302A"),
        ("R scaphoid fx", "S62.001A"),
        ("dx code for screening colo that turned into a diagnostic", "Z12.11"),
        # a brand of several words is one drug, its suffix or strength no word to match
        ("Bicillin L-A 2.4 million units IM", "J0561"),
        ("Bicillin C-R", "J0558"),
        ("Kenalog-10 20 mg", "J3301"),
        ("angioedema due to ACE inhibitor", "T46.4X5A"),  # no brand "angiotensin-converting"
        # two words some entries hyphenate are still two words; a prefix stays joined
        ("late-onset Alzheimer's dementia", "G30.1"),
        ("pre-diabetic", "R73.03"),
        ("IBS-D", "K58.0"),
        # a site's many codes in another code set crowd out no diagnosis
        ("chin laceration needing sutures", "S01.81XA"),
        ("dog bit pt's L hand", "S61.452A"),
        # a combination drug is the table's entry for the two together
        ("Bactrim rash adverse effect", "T36.8X5A"),
        # a history code by the tabular range that holds the condition's code
        ("fam hx colon ca", "Z80.0"),
        ("family history of pancreatic cancer", "Z80.0"),
        ("hx of stomach cancer", "Z85.028"),
        # a breast named without the patient's sex is a female's, not the skin's
        ("breast cancer", "C50.919"),
        ("keflex reaction, rash", "T36.1X5A"),
        # pneumonia is a lower respiratory infection; its lobe is no code axis
        ("COPD w/ PNA", "J44.0"),
        ("RLL pneumonia", "J18.9"),
        # a congenital or newborn code is not offered for what the phrase did not say so
        ("mitral valve regurgitation", "I34.0"),
        ("diverticulosis colon, no bleeding", "K57.30"),
        # what a title leaves open ("unspecified as acute or chronic") it does not say
        ("gastric ulcer, no bleeding or perforation", "K25.9"),
        ("chronic gastric ulcer", "K25.7"),
        ("recurrent bilateral inguinal hernia", "K40.21"),
        # an organism's epithet is not the disease it sounds like
        ("sepsis due to pneumonia", "A41.9"),
        ("H flu pneumonia", "J14"),
        ("strep pneumo pneumonia", "J13"),
        # a wound's size is no axis; the chest's walls are the thorax's front and back
        ("large contusion L hip", "S70.02XA"),
        ("L anterior chest wall contusion from seatbelt", "S20.212A"),
        ("anterior chest wall pain", "R07.89"),
        # packs a day, not the tuberculin test
        ("smokes 1 ppd cigarettes", "F17.210"),
        ("PPD positive", "R76.11"),
        # "the Z code for" a drug asks for its long-term use; oral meds are a diabetic's
        ("Z code for the metformin", "Z79.84"),
        ("oral med Z code", "Z79.84"),
        # the tabular's name for long COVID; a symptom's duration few titles say
        ("long COVID", "U09.9"),
        ("persistent fatigue", "R53.83"),
        ("persistent AF", "I48.19"),
        # a brand whose generic the table lists under its drug: Lantus is insulin glargine
        ("taking half her Lantus dose", "T38.3X6A"),
        # the Index: "Sprain, ankle, talofibular S93.49-"
        ("ATFL sprain L", "S93.492A"),
        # the Index's biliary (gallstone) pancreatitis; "admitted with" tells the stay
        ("admitted with acute pancreatitis due to gallstones", "K85.10"),
        # a stroke's cause in the tabular's words; hemiparesis is hemiplegia
        ("Acute ischemic stroke d/t thrombus of L MCA", "I63.312"),
        ("R hemiparesis", "G81.91"),
        # someone else's smoking is the patient's exposure, not their dependence
        ("Mom smokes in the house", "Z77.22"),
        ("parents smoke around the kids", "Z77.22"),
        ("rash from sulfa drugs", "T37.0X5A"),
        # an osteoporotic (fragility) fracture is M80's, of the age-related kind by default
        ("osteoporotic compression fracture L1", "M80.08XA"),
        ("fragility fx L wrist", "M80.032A"),
        ("disuse osteoporosis", "M81.8"),
        # a relative's disease is family history, someone else's infection an exposure
        ("mother had breast cancer", "Z80.3"),
        ("father died of sudden cardiac death", "Z82.41"),
        ("dad had colon ca at 50", "Z80.0"),
        ("coworker tested positive for covid, pt asymptomatic", "Z20.822"),
        ("wheelchair bound", "Z99.3"),
        ("DOT physical for CDL", "Z02.4"),
        ("homeless, sleeping in his car", "Z59.02"),
        ("hx of XRT to chest", "Z92.3"),
        # a drug stopped or skipped is underdosing, named by what it treats; "stopped
        # smoking" stays a history
        ("stopped taking his insulin because of cost", "T38.3X6A"),
        ("missed 3 days of her seizure meds", "T42.76XA"),
        ("skipped her Synthroid for a week", "T38.1X6A"),
        ("stopped smoking 2 yrs ago", "Z87.891"),
        ("stung by a wasp", "T63.461A"),
        # named fractures and injuries as the tabular words them
        ("R wrist buckle fx, 6 yo", "S52.521A"),
        ("boxer's fx R 5th metacarpal", "S62.336A"),
        ("bead stuck in L ear", "T16.2XXA"),
        ("subungual hematoma R thumb", "S60.111A"),
        # a respiratory failure's type and the abbreviations coders type for it
        ("Acute hypoxic respiratory failure", "J96.01"),
        ("acute on chronic hypercapnic resp failure", "J96.22"),
        ("COPD exac", "J44.1"),
        # the Index's "Cholelithiasis - see Calculus, gallbladder"
        ("acute cholecystitis with cholelithiasis", "K80.00"),
        # a burn or a cut of no named site is no ear's: "of unspecified ear" names the ear
        ("burn", "T30.0"),
        ("lac R ear", "S01.311A"),
        ("otitis media R ear", "H66.91"),
        # encounters and statuses by the words coders use, not the titles'
        ("pre-employment drug screen", "Z02.83"),
        ("lead level screening", "Z13.88"),
        ("colostomy care visit", "Z43.3"),
        ("PEG tube check and cleaning", "Z43.1"),
        ("mechanical heart valve", "Z95.2"),
        ("diet counseling", "Z71.3"),
        ("bedbound", "Z74.01"),
        ("needs help with bathing and dressing", "Z74.1"),
        ("s/p gastric bypass", "Z98.84"),
        # a service's billing unit, said, picks its code (per hour, not per diem)
        ("RN nursing care in the home per hour", "S9123"),
        ("home health OT, each 15 minutes", "G0152"),
        # how a drug was involved, never a procedure ("didn't take insulin")
        ("didn't take insulin for 3 days", "T38.3X6A"),
        # the reason for the visit, not the drug given at it
        ("here for her depo shot", "Z30.42"),
        ("here for chemo infusion today", "Z51.11"),
        ("adverse reaction to IV contrast", "T50.8X5A"),
        ("allergic to IV contrast", "Z91.041"),
        ("CO poisoning from a space heater, accidental", "T58.2X1A"),
        # fingers counted, bones by their adjective, what is still in a wound
        ("R 5th finger distal phalanx fx, closed, displaced", "S62.636A"),
        ("pt broke his L pinky finger, prox phalanx, nondisplaced", "S62.647A"),
        ("greenstick fx R radial shaft", "S52.311A"),
        ("lac L forearm w/ retained glass", "S51.822A"),
        # a fracture not said to be displaced or not is displaced (I.C.19.c.1), and its
        # unspecified code comes before the "other" one
        ("broke her R pinky toe", "S92.501A"),
        ("fractured R big toe", "S92.401A"),
        ("post-concussion syndrome", "F07.81"),
        # how long the patient was out, in the S06 titles' ranges
        ("concussion w/ LOC 15 min", "S06.0X1A"),
        # a denied ride is still transportation insecurity; an INR check is drug monitoring
        ("no transportation to appointments", "Z59.82"),
        ("INR check", "Z51.81"),
        # a side after a denial is asserted; a drug the patient is on is a status
        ("DM2 mild NPDR without macular edema both eyes", "E11.3293"),
        ("On insulin", "Z79.4"),
        # an accident told before the injury with no comma between: the injury leads
        ("fell off his bike closed fx of L distal radius", "S52.502A"),
    ],
)
def test_coders_phrasing(search: CodeSearch, text: str, code: str) -> None:
    assert first(search, text) == code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        # the Index sends a histology to the Table of Neoplasms by its behavior and site
        ("adenocarcinoma of the RUL", "C34.11"),
        ("invasive ductal carcinoma of the left breast", "C50.912"),
        ("small cell lung ca, right", "C34.91"),
        ("SCC of the esophagus", "C15.9"),
        ("tubular adenoma of the transverse colon", "D12.3"),
        ("brain tumor", "D49.6"),
        ("metastatic adenocarcinoma to the liver", "C78.7"),
        # a site the index does not spell this way is still a site: not "unspecified"
        ("cecal adenocarcinoma", "C18.0"),
        # the histology alone is the unspecified site's
        ("adenocarcinoma", "C80.1"),
        # the skin has codes for squamous and basal cell carcinoma
        ("squamous cell carcinoma of skin of scalp", "C44.42"),
        ("basal cell carcinoma of L cheek", "C44.319"),
        # a behavior the query states wins over its histology's
        ("benign tumor of the parotid", "D11.0"),
        ("carcinoma in situ of cervix", "D06.9"),
    ],
)
def test_a_histology_is_coded_by_its_behavior_and_site(
    search: CodeSearch, text: str, code: str
) -> None:
    assert first(search, text) == code


def test_an_adverse_effects_manifestation_is_no_injury_or_complication_of_care(
    search: CodeSearch,
) -> None:
    codes = [h.code for h in search.search("keflex reaction, rash", limit=2)]
    assert codes == ["T36.1X5A", "L27.0"]  # the drug eruption; not T80.69XA, a serum reaction


def test_an_adverse_effect_names_the_drug_and_keeps_the_manifestation(search: CodeSearch) -> None:
    codes = [h.code for h in search.search("angioedema from lisinopril", limit=3)]
    assert codes[0] == "T46.4X5A"  # adverse effect, not a poisoning
    assert "T78.3XXA" in codes  # the manifestation, coded first (I.C.19.e.5(a))


@pytest.mark.parametrize(
    ("text", "manifestation", "unspecified"),
    [
        ("hypotension from lisinopril", "I95.2", "I95.9"),
        ("rash from amoxicillin", "L27.0", "R21"),
        ("constipation from oxycodone", "K59.03", "K59.00"),
    ],
)
def test_an_adverse_effects_manifestation_is_the_drugs_where_the_tabular_has_one(
    search: CodeSearch, text: str, manifestation: str, unspecified: str
) -> None:
    codes = [h.code for h in search.search(text, limit=5)]
    assert codes.index(manifestation) < codes.index(unspecified) if unspecified in codes else True
    assert manifestation in codes[:2]


@pytest.mark.parametrize(
    ("text", "drug"),
    [
        ("digoxin toxicity", "T46.0X5A"),  # tells no effect: no "drug-induced cataract"
        ("infusion reaction to Remicade", "T45.1X5A"),  # not "drug induced acute dystonia"
        ("humira injection site reaction", "T45.1X5A"),  # not a stress fracture
    ],
)
def test_an_adverse_effects_manifestation_is_one_its_own_words_find(
    search: CodeSearch, text: str, drug: str
) -> None:
    hits = search.search(text, limit=3)
    assert hits[0].code == drug
    assert all(hit.code.startswith("T") or hit.score < 0.7 for hit in hits)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("dizziness from gabapentin", "T42.6X5A"),  # the Table's "Anticonvulsant, specified"
        ("missed doses of Keppra", "T42.6X6A"),
        ("pregabalin overdose, intentional", "T42.6X2A"),
        ("rash from levofloxacin", "T36.8X5A"),
    ],
)
def test_a_drug_the_table_does_not_list_is_read_as_its_class(
    search: CodeSearch, text: str, code: str
) -> None:
    assert code in [hit.code for hit in search.search(text, limit=2)]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("counseling for weight loss", "Z71.3"),  # not the abnormal weight loss
        ("vasectomy consult", "Z30.09"),
        ("pre-op EKG", "Z01.810"),
        ("post-op follow up visit, no complications", "Z09"),
        # a first pregnancy's supervision has its own codes; the weeks give the trimester
        ("routine prenatal visit, first pregnancy, 12 weeks", "Z34.01"),
        ("routine prenatal visit 20 weeks", "Z34.92"),
    ],
)
def test_a_visits_reason_is_its_encounter_code(search: CodeSearch, text: str, code: str) -> None:
    assert first(search, text) == code


def test_a_tendon_torn_by_injury_is_its_strain(search: CodeSearch) -> None:
    assert first(search, "Achilles tendon rupture L") == "S86.012A"
    assert first(search, "nontraumatic tendon rupture L ankle") == "M66.872"


def test_a_drugs_class_is_no_word_of_the_phrase(search: CodeSearch) -> None:
    # the class entry is read only for a poisoning, adverse effect or underdosing
    assert first(search, "on gabapentin for neuropathy") == "G62.9"


def test_a_system_cue_keeps_other_systems_out(search: CodeSearch) -> None:
    hits = search.search("J code for Toradol", limit=10)
    assert hits and {h.system for h in hits} == {HCPCS}
    hits = search.search("dx code for a screening colonoscopy", limit=10)
    assert hits and {h.system for h in hits} == {ICD10CM}


def test_a_stated_side_is_never_contradicted(search: CodeSearch) -> None:
    hits = search.search("diabetic ulcer of left heel limited to breakdown of skin", limit=10)
    assert hits[0].code == "L97.421"
    assert not [h for h in hits if "right" in h.title.lower()]
    hits = search.search("R ankle sprain, initial", limit=10)
    assert hits and not [h for h in hits if "left" in h.title.lower()]


def test_a_bone_named_as_an_adjective_finds_the_bone(search: CodeSearch) -> None:
    # the tabular says "shaft of humerus"; coders write "humeral shaft fx" (the
    # unspecified fracture before the "other" one)
    assert [h.code for h in search.search("L humeral shaft fx", limit=5)][:2] == [
        "S42.302A",
        "S42.392A",
    ]
    assert search.search("femoral neck fx R", limit=1)[0].code == "S72.001A"


def test_a_phrase_is_read_as_concepts(search: CodeSearch) -> None:
    """What suggestions compare to tell that "the fracture" points back at "displaced fx of
    R femoral neck": abbreviations and synonyms read as the search reads them."""
    fracture = search.concepts("the fracture")
    told = frozenset().union(*search.concepts("displaced midcervical fx of R femoral neck"))
    assert fracture and all(concept & told for concept in fracture)
    assert set(search.concepts("SSI")) <= set(search.concepts("surgical site infection"))
    assert search.concepts("this visit") == []


def test_a_metatarsal_is_of_the_foot(search: CodeSearch) -> None:
    assert search.search("chronic osteomyelitis L metatarsal")[0].code == "M86.672"
