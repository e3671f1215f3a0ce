"""French labels of the dimension codes, for readers who do not know INSEE's codes.

The snapshot's `indicators.nomenclatures` table (contract, point 3) is preferred when it is
there; these are the fallback, written from INSEE's published nomenclatures (NAF rév. 2
sections, Sirene effectif bands) and the ESS families of docs/methode.md.
"""

from __future__ import annotations

FAMILLES = {
    "association": "Associations",
    "cooperative": "Coopératives",
    "mutuelle": "Mutuelles",
    "fondation": "Fondations",
    "autre_non_lucratif": "Autres organismes non lucratifs",
    "societe_commerciale_ess": "Sociétés commerciales de l'ESS",
    "hors_ess": "Hors ESS",
    "ensemble": "Ensemble de l'ESS",
}

SECTIONS = {
    "A": "A — Agriculture, sylviculture et pêche",
    "B": "B — Industries extractives",
    "C": "C — Industrie manufacturière",
    "D": "D — Électricité, gaz, vapeur et air conditionné",
    "E": "E — Eau, assainissement, déchets et dépollution",
    "F": "F — Construction",
    "G": "G — Commerce ; réparation d'automobiles et de motocycles",
    "H": "H — Transports et entreposage",
    "I": "I — Hébergement et restauration",
    "J": "J — Information et communication",
    "K": "K — Activités financières et d'assurance",
    "L": "L — Activités immobilières",
    "M": "M — Activités spécialisées, scientifiques et techniques",
    "N": "N — Activités de services administratifs et de soutien",
    "O": "O — Administration publique",
    "P": "P — Enseignement",
    "Q": "Q — Santé humaine et action sociale",
    "R": "R — Arts, spectacles et activités récréatives",
    "S": "S — Autres activités de services",
    "T": "T — Activités des ménages en tant qu'employeurs",
    "U": "U — Activités extra-territoriales",
    "non_classe": "Non classé (ancienne nomenclature)",
    "ensemble": "Toutes sections",
}

TRANCHES = {
    "NN": "Sans salarié déclaré (NN)",
    "00": "0 salarié",
    "01": "1 ou 2 salariés",
    "02": "3 à 5 salariés",
    "03": "6 à 9 salariés",
    "11": "10 à 19 salariés",
    "12": "20 à 49 salariés",
    "21": "50 à 99 salariés",
    "22": "100 à 199 salariés",
    "31": "200 à 249 salariés",
    "32": "250 à 499 salariés",
    "41": "500 à 999 salariés",
    "42": "1 000 à 1 999 salariés",
    "51": "2 000 à 4 999 salariés",
    "52": "5 000 à 9 999 salariés",
    "53": "10 000 salariés et plus",
    "non_renseignee": "Tranche non renseignée",
    "ensemble": "Toutes tranches",
}

BESOINS = {
    "locaux": "Locaux",
    "recrutement": "Recrutement",
    "rh_appui": "Appui en ressources humaines",
    "financement": "Financement",
    "commande_publique": "Commande publique",
    "cooperation_mutualisation": "Coopération, mutualisation",
    "visibilite_communication": "Visibilité, communication",
    "formation": "Formation",
    "autre": "Autre",
}

TYPES_RESEAU = {
    "ressourcerie": "Ressourceries",
    "siae": "Insertion par l'activité économique (SIAE)",
    "esus": "Entreprises solidaires d'utilité sociale (ESUS)",
    "scop_scic": "SCOP et SCIC",
    "cress": "CRESS",
    "autre": "Autre",
}

FALLBACK = {
    "famille": FAMILLES,
    "section_naf": SECTIONS,
    "tranche_effectifs": TRANCHES,
    "besoin": BESOINS,
    "type_reseau": TYPES_RESEAU,
}
