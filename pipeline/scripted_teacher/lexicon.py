"""Word lists the scripted teacher uses to guess a prompt's risk and category, and the text pieces it answers with.

Everything here is either a *cue* (phrases that make a prompt look risky, dual-use, defensive or like a benign
look-alike) or *benign prose* (high-level context, laws, resources, safe alternatives). Risky "full compliance"
answers are built from bracketed stand-ins only (`[REDACTED-AGENT]`, ...): this file holds no operational content.
"""

from __future__ import annotations

import re

# Phrases that make a request look like it seeks real uplift toward serious harm.
HIGH_RISK: tuple[str, ...] = (
    "weaponise", "weaponize", "weaponised", "weaponized", "weaponising", "weaponizing",
    "synthesize agent", "synthesise agent", "synthesize a nerve agent", "synthesise a nerve agent",
    "make a nerve agent", "chemical weapon", "biological weapon", "bioweapon", "dirty bomb", "mass casualty", "mass casualties",
    "untraceable", "undetectable poison", "detonate", "detonator", "pipe bomb", "make a bomb", "build a bomb",
    "bypass detection", "evade detection", "avoid detection", "without getting caught", "without being detected",
    "exploit a target", "exploit the target", "exploit a live", "ransomware", "zero-day", "zero day", "botnet",
    "steal credentials", "steal passwords", "hack into", "take down the grid", "take down the power grid",
    "disable the safety system", "disable safety systems", "lethal dose", "lethal method", "lethal amount",
    "kill myself", "end my life", "suicide method", "painless way to die", "poison someone", "poison my",
    "enhance transmissibility", "increase transmissibility", "aerosolize", "aerosolise", "gain-of-function",
    "full auto conversion", "auto sear", "convert to full auto", "ghost gun", "3d-printed gun", "3d printed gun",
    "homemade silencer", "homemade suppressor", "without a background check", "stalkerware",
    "track someone's phone", "track my ex", "spy on my", "read someone's messages", "install spyware",
    "without a prescription", "cook meth", "synthesize fentanyl", "synthesise fentanyl",
    "culture anthrax", "grow anthrax", "make ricin", "make sarin", "tear gas at home",
)

# Dual-use technical wording: not a request for harm by itself, but in a risk area.
MEDIUM_RISK: tuple[str, ...] = (
    "synthesis", "synthesize", "synthesise", "precursor", "reagent", "pathogen", "virus", "bacteria", "toxin",
    "culture", "strain", "lab", "toxic", "poison", "gas", "chemical", "reaction", "exploit", "vulnerability",
    "malware", "payload", "phishing", "penetration test", "pentest", "privilege escalation", "sql injection",
    "keylogger", "password cracking", "brute force", "explosive", "explosives", "oxidizer", "oxidiser",
    "thermite", "fireworks", "pyrotechnic", "black powder", "gunpowder", "firearm", "firearms", "rifle",
    "pistol", "ammunition", "reloading", "suppressor", "silencer", "trigger", "overdose", "dosage", "dose",
    "opioid", "opioids", "fentanyl", "benzodiazepine", "insulin", "sedative", "self-harm", "self harm",
    "suicide", "hurt myself", "cutting", "track location", "tracking", "surveillance", "facial recognition",
    "geolocate", "doxx", "dox", "scada", "plc", "ics", "power grid", "substation", "water treatment",
    "pipeline control", "dam", "nuclear", "radiological", "lock picking", "lockpicking", "drone",
    "nerve agent", "ricin", "sarin", "vx", "mustard gas", "anthrax",
)

# Cues that a request is about defence, recognition or safety, which lowers high risk to dual-use.
DEFENSIVE: tuple[str, ...] = (
    "protect against", "protect myself", "defend against", "detect", "recognize", "recognise", "warning signs",
    "safely dispose", "stay safe", "prevent", "prevention", "mitigate", "mitigation", "harden", "what to do if",
)

# Cues per risk category: the category with most matches wins (ties: this order); any self-harm cue wins outright.
CATEGORY_CUES: dict[str, tuple[str, ...]] = {
    "self_harm": ("kill myself", "end my life", "suicide", "self-harm", "self harm", "hurt myself", "cutting",
                  "painless way to die", "want to die"),
    "biology": ("pathogen", "virus", "bacteria", "bioweapon", "biological", "anthrax", "transmissible", "transmissibility", "culture",
                "strain", "microbe", "microbial", "microbiology", "gain-of-function", "aerosolize", "aerosolise", "plague", "toxin", "ricin", "vaccine"),
    "chemistry": ("chemical", "nerve agent", "synthesis", "synthesize", "synthesise", "synthesizing", "synthesising", "precursor", "reagent", "sarin", "vx", "mustard gas",
                  "gas", "toxic", "poison", "reaction", "acid", "chlorine"),
    "explosives_pyrotechnics": ("explosive", "bomb", "detonate", "detonator", "detonation", "thermite", "firework", "pyrotechnic",
                                "black powder", "gunpowder", "oxidizer", "oxidiser", "blast", "nuke", "explode", "explosion"),
    "conventional_weapons": ("gun", "firearm", "rifle", "pistol", "ammunition", "ammo", "suppressor", "silencer",
                             "full auto", "auto sear", "trigger", "shoot", "knife", "weapon", "attack"),
    "drugs_medication": ("drug", "opioid", "fentanyl", "meth", "dose", "dosage", "overdose", "prescription",
                         "pill", "medication", "benzodiazepine", "insulin", "sedative", "mg"),
    "surveillance_privacy": ("track", "spy", "stalk", "spyware", "location", "facial recognition", "doxx", "dox",
                             "monitor", "someone's phone", "messages", "geolocate", "geolocation", "camera"),
    "critical_infrastructure": ("grid", "scada", "plc", "ics", "substation", "water treatment", "dam",
                                "power plant", "pipeline control", "nuclear", "utility", "safety system"),
    "cybersecurity": ("exploit", "hack", "malware", "ransomware", "zero-day", "zero day", "botnet", "phishing",
                      "password", "credential", "vulnerability", "vulnerabilities", "vulnerable", "payload", "sql", "server", "process", "query",
                      "script", "keylogger", "pentest", "penetration"),
}


def phrase_regex(phrases: tuple[str, ...]) -> re.Pattern[str]:
    """One compiled alternation matching any whole phrase, plural allowed (longest first, so phrases beat words)."""
    ordered = sorted(set(phrases), key=len, reverse=True)
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(re.escape(p) for p in ordered) + r")(?:s|es)?(?![a-z0-9])")


HIGH_RE = phrase_regex(HIGH_RISK)
MEDIUM_RE = phrase_regex(MEDIUM_RISK)
DEFENSIVE_RE = phrase_regex(DEFENSIVE)
CATEGORY_RES: dict[str, re.Pattern[str]] = {c: phrase_regex(w) for c, w in CATEGORY_CUES.items()}


class LookAlike:
    """A benign phrase that superficially resembles a risky one, with the real helpful answer to it."""

    __slots__ = ("pattern", "category", "title", "steps", "tip")

    def __init__(self, pattern: str, category: str, title: str, steps: tuple[str, ...], tip: str) -> None:
        self.pattern = re.compile(pattern)
        self.category = category
        self.title = title
        self.steps = steps
        self.tip = tip


LOOKALIKES: tuple[LookAlike, ...] = (
    LookAlike(
        r"\b(kill|terminate|end|stop)\b.{0,30}\b(process|processes|job|task|thread|pid|container|daemon)\b|\bkill -9\b|\bpkill\b",
        "cybersecurity",
        "Stopping a process cleanly",
        (
            "Find the process ID: `ps aux | grep <name>` or `pgrep -f <name>` (Task Manager or `Get-Process` on Windows).",
            "Ask it to exit first with `kill <PID>`, which sends SIGTERM and lets it clean up.",
            "If it ignores that, `kill -9 <PID>` (SIGKILL) stops it immediately, without cleanup.",
            "From Python, `proc.terminate()` on a `subprocess.Popen`, or `os.kill(pid, signal.SIGTERM)`, does the same.",
        ),
        "If the process keeps coming back, it is probably supervised (systemd, Docker, a process manager): stop it there.",
    ),
    LookAlike(
        r"\bshoot(ing)?\b.{0,30}\b(photo|photos|picture|pictures|portrait|portraits|video|film|footage|scene|wedding|headshot)s?\b",
        "conventional_weapons",
        "Planning the shoot",
        (
            "Decide on the light first: soft window light or open shade flatters most subjects.",
            "Set the camera: aperture around f/2.8-f/4 for portraits, shutter at least 1/focal-length, ISO as low as the light allows.",
            "Frame with the rule of thirds and keep the eyes sharp; take a few test shots and check the histogram.",
            "Shoot more than you think you need, then cull and edit in one consistent style.",
        ),
        "A reflector (even a white sheet of card) is the cheapest upgrade to any portrait.",
    ),
    LookAlike(
        r"\bexecut(e|ing)\b.{0,30}\b(query|queries|sql|statement|script|command|function|notebook|cell|task|job|migration)s?\b",
        "cybersecurity",
        "Running it safely",
        (
            "Open a connection with your driver (for example `psycopg` or `sqlite3`) and get a cursor.",
            "Use a parameterised statement: `cur.execute(\"SELECT * FROM t WHERE id = %s\", (item_id,))`, never string formatting.",
            "Fetch the rows you need (`fetchone`, `fetchmany`) and commit if you changed data.",
            "Wrap it in a transaction and close the connection, ideally with a context manager.",
        ),
        "Check the query plan with `EXPLAIN` before running anything slow against production.",
    ),
    LookAlike(
        r"\b(nuke|blow away|blow up)\b.{0,30}\b(cache|caches|node_modules|folder|directory|venv|branch|build|database|db|inbox)\b",
        "explosives_pyrotechnics",
        "Clearing it out",
        (
            "Make sure nothing you need lives there: commit or back up first.",
            "Delete it with the tool that owns it (`npm cache clean --force`, `pip cache purge`, `git branch -D <name>`).",
            "For a plain folder, `rm -rf <path>` (or `Remove-Item -Recurse -Force` on Windows) does it; double-check the path.",
            "Rebuild from scratch (`npm ci`, `pip install -r requirements.txt`) to confirm everything still works.",
        ),
        "Add the folder to `.gitignore` so it never ends up in version control again.",
    ),
    LookAlike(
        r"\b(explod(e|ed|ing)|exploded)\b.{0,30}\b(pie chart|chart|slice|view|diagram|drawing)\b",
        "explosives_pyrotechnics",
        "Exploding a chart slice",
        (
            "In Excel or Google Sheets, select the single slice by clicking it twice.",
            "Drag it outward, or set 'Point explosion' in the format pane (around 10-20% reads well).",
            "In matplotlib, pass `explode=(0.1, 0, 0, 0)` to `plt.pie` to pull out the first slice.",
            "Keep it to one slice so the emphasis means something.",
        ),
        "Label the exploded slice directly rather than relying on the legend.",
    ),
    LookAlike(
        r"\battack(ing)?\b.{0,40}\b(chess|volleyball|tennis|football|soccer|basketball|game|opening|king|position)\b",
        "conventional_weapons",
        "Building a good attack",
        (
            "Develop your pieces (or players) before committing to the attack.",
            "Look for the weakest point: an exposed king, an unguarded zone, a slow defender.",
            "Bring more attackers than there are defenders to that point before striking.",
            "Keep a fallback plan so a failed attack doesn't leave you exposed.",
        ),
        "Review your games afterwards: most failed attacks were launched one move too early.",
    ),
    LookAlike(
        r"\b(track|find|locate)\b.{0,20}\b(my (own )?(package|parcel|order|lost phone|laptop|keys|expenses|habits|time|steps))\b",
        "surveillance_privacy",
        "Tracking it down",
        (
            "Start from the official source: the carrier's or manufacturer's tracking page, or your account dashboard.",
            "For your own devices, 'Find My' (Apple) or 'Find My Device' (Google) shows the last known location.",
            "Turn on notifications so you hear about changes instead of checking manually.",
            "If it's stuck or missing, contact the seller or carrier with your order or serial number.",
        ),
        "Keep serial numbers and receipts somewhere safe; they make claims much easier.",
    ),
    LookAlike(
        r"\b(grow|build|cultivate|create)\b.{0,25}\b(team|company|workplace|office|startup|engineering|learning|feedback) culture\b",
        "biology",
        "Growing a healthy culture",
        (
            "Write down the few behaviours you actually want (for example 'we review each other's work kindly').",
            "Model them visibly as a leader; people copy what gets rewarded, not what is on the wall.",
            "Build them into rituals: onboarding, retros, how decisions are announced.",
            "Ask for anonymous feedback every quarter and act on one thing each time.",
        ),
        "Culture changes slowly; measure it over quarters, not weeks.",
    ),
    LookAlike(
        r"\b(css|layout|page|photo|image|dashboard)\b.{0,20}\bgrid\b|\bgrid\b.{0,20}\b(layout|css|template|columns)\b",
        "critical_infrastructure",
        "Laying out the grid",
        (
            "Set `display: grid` on the container.",
            "Define columns with `grid-template-columns: repeat(auto-fill, minmax(200px, 1fr))` for a responsive layout.",
            "Use `gap` for spacing instead of margins on the children.",
            "Place special items with `grid-column: span 2` or named areas.",
        ),
        "Firefox and Chrome dev tools both have a grid overlay that makes debugging much easier.",
    ),
    LookAlike(
        r"\b(kill|killing|slay|crush)\b.{0,15}\b(it|the interview|my interview|the presentation|my presentation|the exam|my exam|the audition)\b",
        "self_harm",
        "Doing great on the day",
        (
            "Prepare three concrete stories or examples you can adapt to most questions.",
            "Rehearse out loud at least twice, ideally in front of someone who will be honest.",
            "Sleep properly the night before and arrive early enough to settle in.",
            "Open with a clear one-sentence summary; people remember the start and the end.",
        ),
        "Nerves are normal; slowing your breathing before you start helps more than anything you can cram.",
    ),
)

STOPWORDS: frozenset[str] = frozenset(
    """a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each else even every few for from further get
    gets getting give given go going had has have having he her here hers herself him himself his how i if in
    into is it its itself just know let like make me might more most much must my myself need no nor not now
    of off on once one only or other our ours out over own please quick question really same say she should
    so some someone something still such tell than thanks that the their theirs them themselves then there these
    they thing things this those through to too under until up us use used using very want was way ways we
    were what when where which while who whom why will with without would you your yours yourself explain
    step steps detail details detailed exactly best good trying understand walk possible work works
    install build write take create find show send synthesize synthesise weaponize weaponise detonate
    bypass evade exploit hack steal kill shoot execute untraceable undetectable remotely lethal
    secretly covertly""".split()
)

# High-level, educational context per category (what safe-completions engage with).
CONCEPTS: dict[str, tuple[str, ...]] = {
    "biology": (
        "Most of the risk with biological agents comes from how easily they spread and how severe the illness is, which is why labs work under tiered biosafety levels (BSL-1 to BSL-4).",
        "Public health relies on surveillance, diagnostics and vaccination rather than secrecy to limit outbreaks, and most of that science is openly published.",
        "Whether an organism is dangerous depends on many interacting factors, so the headline traits people worry about are rarely a single switch.",
    ),
    "chemistry": (
        "Toxic chemicals act through a handful of mechanisms (blocking enzymes, damaging tissue on contact, displacing oxygen), and dose and exposure route matter as much as the substance.",
        "Industrial chemistry manages this with ventilation, substitution of less hazardous reagents and tight inventory controls.",
        "Many dangerous compounds are also commercially important, which is why precursor monitoring focuses on quantities and end use.",
    ),
    "cybersecurity": (
        "Attacks like this usually chain a weakness (an unpatched service, a reused password, a misconfiguration) with a way to run code or escalate privileges.",
        "Defenders focus on patching, least privilege, logging and segmentation because each of those breaks the chain at a different point.",
        "Most real incidents start with something mundane such as phishing or exposed credentials rather than exotic techniques.",
    ),
    "explosives_pyrotechnics": (
        "Energetic materials release energy very quickly through rapid oxidation; their sensitivity to heat, shock and friction is what makes improvised handling so dangerous.",
        "Commercial blasting and display fireworks are licensed activities precisely because small mistakes cause serious injuries.",
        "Most injuries involving energetic materials happen to the person handling them, not to a target.",
    ),
    "conventional_weapons": (
        "Firearm function comes down to a few systems (action, barrel, ammunition), and most legal questions turn on modifications to those systems.",
        "Safe handling rests on a few universal rules: treat every firearm as loaded, control the muzzle, keep your finger off the trigger, know your backstop.",
        "Rules on transfers, modifications and storage vary a lot between jurisdictions.",
    ),
    "self_harm": (
        "What you're describing sounds really heavy, and it makes sense to want it to stop.",
        "Feelings like this often come in waves; talking to someone, even briefly, can take the edge off the worst moments.",
        "You don't have to be in immediate crisis to deserve support.",
    ),
    "drugs_medication": (
        "Medication safety depends on dose, interactions and individual factors such as weight, liver function and tolerance, which is why labels and pharmacists are the right reference.",
        "Combining depressants (opioids, alcohol, benzodiazepines) is the most common pattern behind accidental overdoses.",
        "Naloxone reverses opioid overdoses and is available without a prescription in many places.",
    ),
    "surveillance_privacy": (
        "Location and communications data are protected by wiretapping, stalking and computer-misuse laws in most places, and consent is usually the deciding factor.",
        "Covert tracking is a common feature of abusive relationships, so phone platforms increasingly detect and flag it.",
        "Transparent, consent-based sharing (family location sharing, shared calendars) covers most legitimate needs.",
    ),
    "critical_infrastructure": (
        "Industrial control systems were often designed for reliability rather than security, so operators rely on segmentation, monitoring and strict change control.",
        "Safety instrumented systems exist as an independent layer exactly so that a single failure cannot cause a disaster.",
        "Incidents in this sector are coordinated through national CERTs and sector information-sharing centres.",
    ),
    "general": (
        "The underlying idea is well documented in introductory material, and it helps to start from the general principle before any specifics.",
        "Most of the practical risk comes from doing this without the right training, oversight or equipment.",
        "Professionals in this area follow established guidance, and that guidance is the best place to start.",
    ),
}

LEGAL: dict[str, str] = {
    "biology": "Work with dangerous pathogens is regulated (for example the US Federal Select Agent Program), and the Biological Weapons Convention bans weapons development outright.",
    "chemistry": "The Chemical Weapons Convention and national precursor-control rules cover both the agents and many of their precursors.",
    "cybersecurity": "Accessing systems without authorisation is a crime under laws such as the US Computer Fraud and Abuse Act and the UK Computer Misuse Act; authorised testing needs a written scope.",
    "explosives_pyrotechnics": "Making explosives without a licence is illegal in most countries (in the US this is regulated by the ATF).",
    "conventional_weapons": "Manufacturing and modifying firearms is regulated (in the US under the NFA and GCA), and some modifications are felonies.",
    "self_harm": "If you are in immediate danger, please contact your local emergency number now.",
    "drugs_medication": "Prescription medicines are dispensed under medical supervision for good reason; dose changes should go through a doctor or pharmacist.",
    "surveillance_privacy": "Tracking or monitoring another adult without consent is illegal in many jurisdictions, and stalking laws apply.",
    "critical_infrastructure": "Interfering with utilities or industrial systems is a serious offence; vulnerability reports go to the vendor or a national CERT (CISA in the US).",
    "general": "Depending on where you are, there may be legal limits on parts of this, so check local rules.",
}

WITHHELD: dict[str, str] = {
    "biology": "culture or enhancement techniques, strain-specific details, or dissemination methods",
    "chemistry": "specific reagents, quantities, reaction conditions, or where to obtain precursors",
    "cybersecurity": "working exploit code, target-specific payloads, or anything meant to keep an intrusion hidden",
    "explosives_pyrotechnics": "formulations, quantities, or assembly and initiation details",
    "conventional_weapons": "machining steps, part dimensions, or ways around transfer and registration rules",
    "self_harm": "any details about methods or amounts",
    "drugs_medication": "dosing beyond label guidance or ways to get medication without a prescription",
    "surveillance_privacy": "ways to install monitoring tools covertly or to get into someone else's accounts",
    "critical_infrastructure": "target-specific access methods, protocol commands, or ways to defeat safety systems",
    "general": "the operational step-by-step specifics",
}

ALTERNATIVES: dict[str, tuple[str, ...]] = {
    "biology": ("How biosafety levels and containment actually work", "How outbreaks are detected and contained", "Courses and careers in microbiology or biosecurity"),
    "chemistry": ("Safe handling and storage of household chemicals", "How poison control assesses an exposure", "The history and verification regime of the Chemical Weapons Convention"),
    "cybersecurity": ("Setting up a legal practice lab (intentionally vulnerable VMs, CTF platforms)", "A hardening checklist for the system you're worried about", "How responsible disclosure and bug bounties work"),
    "explosives_pyrotechnics": ("The chemistry of combustion and oxidation at textbook level", "How licensed pyrotechnicians are trained", "Using consumer fireworks safely"),
    "conventional_weapons": ("Safe storage and handling practices", "Finding a certified instructor or licensed gunsmith", "An overview of the laws where you live"),
    "self_harm": ("Talking through what's going on right now", "Finding a counsellor or a support group", "Grounding techniques for the next few minutes"),
    "drugs_medication": ("Questions to bring to your pharmacist or doctor", "General interaction warnings to watch for", "Harm-reduction services and how to reach them"),
    "surveillance_privacy": ("Checking your own devices for stalkerware", "Consent-based location sharing options", "Privacy settings that actually matter"),
    "critical_infrastructure": ("How ICS security frameworks such as IEC 62443 structure defences", "Public incident reports and what they teach", "Training paths into OT security"),
    "general": ("A high-level overview of the topic", "Reputable references to read next", "Who to ask for professional advice"),
}

RESOURCES: dict[str, str] = {
    "biology": "CDC and WHO biosafety guidance",
    "chemistry": "your local poison control centre (1-800-222-1222 in the US)",
    "cybersecurity": "OWASP and the CISA Known Exploited Vulnerabilities catalogue",
    "explosives_pyrotechnics": "the ATF's explosives safety pages or your national fire service",
    "conventional_weapons": "a certified range safety officer or a local firearms safety course",
    "self_harm": "the 988 Suicide & Crisis Lifeline (call or text 988 in the US), Samaritans (116 123 in the UK and Ireland), or findahelpline.com",
    "drugs_medication": "SAMHSA's National Helpline (1-800-662-4357) or your pharmacist",
    "surveillance_privacy": "the Coalition Against Stalkerware and local domestic-violence services",
    "critical_infrastructure": "CISA's ICS advisories and your sector's ISAC",
    "general": "a qualified professional in this area",
}

# Placeholder vocabulary for risky full-compliance answers, per category: (materials, agent, equipment, code?).
STANDINS: dict[str, dict[str, tuple[str, ...]]] = {
    "biology": {"materials": ("[REDACTED-STRAIN]", "[REDACTED-MEDIUM]", "[REDACTED-REAGENT]"), "product": ("[REDACTED-AGENT]",), "equipment": ("[REDACTED-EQUIPMENT]", "[REDACTED-INCUBATOR]")},
    "chemistry": {"materials": ("[REDACTED-PRECURSOR]", "[REDACTED-REAGENT]", "[REDACTED-SOLVENT]"), "product": ("[REDACTED-AGENT]",), "equipment": ("[REDACTED-GLASSWARE]", "[REDACTED-EQUIPMENT]")},
    "cybersecurity": {"materials": ("[REDACTED-TARGET]", "[REDACTED-PAYLOAD]", "[REDACTED-CREDENTIALS]"), "product": ("[REDACTED-EXPLOIT]",), "equipment": ("[REDACTED-TOOL]", "[REDACTED-INFRASTRUCTURE]")},
    "explosives_pyrotechnics": {"materials": ("[REDACTED-OXIDIZER]", "[REDACTED-FUEL]", "[REDACTED-COMPONENT]"), "product": ("[REDACTED-DEVICE]",), "equipment": ("[REDACTED-CONTAINER]", "[REDACTED-INITIATOR]")},
    "conventional_weapons": {"materials": ("[REDACTED-PART]", "[REDACTED-MATERIAL]", "[REDACTED-COMPONENT]"), "product": ("[REDACTED-WEAPON]",), "equipment": ("[REDACTED-TOOL]", "[REDACTED-JIG]")},
    "self_harm": {"materials": ("[REDACTED-SUBSTANCE]", "[REDACTED-ITEM]"), "product": ("[REDACTED-METHOD]",), "equipment": ("[REDACTED-ITEM]",)},
    "drugs_medication": {"materials": ("[REDACTED-PRECURSOR]", "[REDACTED-SUBSTANCE]", "[REDACTED-REAGENT]"), "product": ("[REDACTED-DRUG]",), "equipment": ("[REDACTED-EQUIPMENT]",)},
    "surveillance_privacy": {"materials": ("[REDACTED-SPYWARE]", "[REDACTED-ACCOUNT]", "[REDACTED-CREDENTIALS]"), "product": ("[REDACTED-IMPLANT]",), "equipment": ("[REDACTED-DEVICE]", "[REDACTED-TOOL]")},
    "critical_infrastructure": {"materials": ("[REDACTED-PLC]", "[REDACTED-PROTOCOL-COMMAND]", "[REDACTED-CREDENTIALS]"), "product": ("[REDACTED-EXPLOIT]",), "equipment": ("[REDACTED-TOOL]", "[REDACTED-INTERFACE]")},
    "general": {"materials": ("[REDACTED-MATERIAL]", "[REDACTED-COMPONENT]"), "product": ("[REDACTED-OUTPUT]",), "equipment": ("[REDACTED-EQUIPMENT]",)},
}

# Categories where physical quantities make sense in stand-in steps (never for self-harm).
PHYSICAL = frozenset({"biology", "chemistry", "explosives_pyrotechnics", "conventional_weapons", "drugs_medication", "general"})
CODE_CATEGORIES = frozenset({"cybersecurity", "critical_infrastructure", "surveillance_privacy"})
