"""The letters' words in Finnish, Swedish and English: one table per language, the same
keys in each (a test keeps them equal). Texts with ``{…}`` are filled in by the
templates with values that Jinja2 escapes.

The appeal instructions follow the Administrative Procedure Act (hallintolaki 434/2003,
chapter 7 a, §49 a–49 g; notification §59) and the Social Welfare Act (1301/2014, §48):
a written request for review to the organiser's body for individual matters within 30
days of notification; a letter sent by post is taken to be received on the seventh day.
"""

from __future__ import annotations

FI = {
    "lang_name": "suomi",
    "decision_title": "Päätös",
    "decision_subject": "Henkilökohtainen budjetti (HB)",
    "commitment_title": "Maksusitoumus",
    "statement_title": "Kuukausiote",
    "date": "Päivämäärä",
    "decision_number": "Päätöksen numero",
    "commitment_number": "Maksusitoumuksen numero",
    "client_code": "Asiakaskoodi",
    "pilot": "Kokeilu",
    "page": "Sivu",
    "recipient": "Vastaanottaja",
    "decision_heading": "Päätös",
    "decision_text": "Teille myönnetään henkilökohtainen budjetti ajalle {valid_from}–{valid_to}.",
    "monthly_amount": "Budjetti kuukaudessa",
    "budget_for": "Budjetti kuukaudelle {period}",
    "budget_heading": "Budjetin määrä ja sen laskeminen",
    "budget_fixed": ("Budjetti on kiinteä kuukausisumma: päätökseen kirjattu määrä tai kokeilun perusbudjetti, "
                     "kuitenkin enintään kokeilun kuukausikatto."),
    "budget_lines": "Budjetti on laskettu asiakassuunnitelmanne palveluista seuraavasti:",
    "validity_heading": "Voimassaolo",
    "validity_text": "Päätös on voimassa {valid_from}–{valid_to}. Budjetti avataan kuukausittain.",
    "services_heading": "Asiakassuunnitelman palvelut, joihin budjettia voi käyttää",
    "services_plan": "Asiakassuunnitelma, versio {version}, voimassa {valid_from} alkaen.",
    "services_none": "Päätökseen ei liity asiakassuunnitelman palveluita.",
    "carer_days_off": "Omaishoitajan vapaapäivät",
    "service": "Palvelu",
    "quantity": "Määrä kuukaudessa",
    "units": {"hour": "tuntia", "visit": "käyntiä", "day": "päivää", "item": "kpl", "euro": "euroa"},
    "payment_heading": "Miten budjetti maksetaan",
    "payment_text": ("Budjettia ei makseta teille rahana. Kun ostoehdotuksenne hyväksytään, {organiser} "
                     "antaa hyväksytylle palveluntuottajalle maksusitoumuksen. Palveluntuottaja laskuttaa "
                     "palvelun suoraan järjestäjältä, ja järjestäjä maksaa laskun budjetistanne enintään "
                     "maksusitoumuksen määrään asti."),
    "commitments_list": "Tämän päätöksen voimassaoloaikana annetut maksusitoumukset:",
    "commitments_none": "Maksusitoumuksia ei ole vielä annettu.",
    "provider": "Palveluntuottaja",
    "amount": "Määrä",
    "valid_until": "Voimassa asti",
    "status": "Tila",
    "statuses": {"pending": "voimassa", "posted": "laskutettu", "voided": "peruttu", "expired": "vanhentunut"},
    "reasons_heading": "Perustelut",
    "reasons_client": ("Olette henkilökohtaisen budjetoinnin kokeilun asiakas. Palvelutarpeenne on arvioitu ja "
                       "teille on laadittu asiakassuunnitelma, jonka palveluihin budjetti myönnetään."),
    "reasons_amount": "Budjetin määrä perustuu edellä esitettyyn laskelmaan ({rule}).",
    "reasons_fixed": "Budjetin määrä on edellä mainittu kiinteä kuukausisumma kokeilun sääntöjen mukaisesti.",
    "reasons_law": ("Sovelletut oikeusohjeet: sosiaalihuoltolaki (1301/2014), laki sosiaalihuollon asiakkaan "
                    "asemasta ja oikeuksista (812/2000), hallintolaki (434/2003) 44–45 §."),
    "decided_by": "Päätöksen tekijä",
    "more_info": "Lisätietoja päätöksestä antaa",
    "personal_worker": "omatyöntekijä",
    "roles": {"worker": "omatyöntekijä", "supervisor": "esihenkilö", "admin": "pääkäyttäjä",
              "finance": "talous", "evaluator": "arvioija", "assistant": "HB-avustaja", "client": "asiakas"},
    "notice_heading": "Tiedoksianto",
    "notice_text": ("Päätös lähetetään kirjeellä {sent_on}. Teidän katsotaan saaneen päätöksestä tiedon "
                    "seitsemäntenä päivänä lähettämisestä eli {notified_on}, jollei muuta näytetä."),
    "appeal_heading": "Oikaisuvaatimusohje",
    "appeal_for": "Koskee päätöstä {number}, päivätty {date}.",
    "calc": {"carer's days off": "Omaishoitajan vapaapäivät", "monthly cap": "Kuukausikatto",
             "monthly budget": "Budjetti kuukaudessa", "partial month": "Osa kuukaudesta"},
    "appeal_intro": ("Tähän päätökseen tyytymätön voi hakea siihen oikaisua tekemällä kirjallisen "
                     "oikaisuvaatimuksen. Päätökseen ei saa hakea muutosta valittamalla tuomioistuimeen."),
    "appeal_who_heading": "Oikaisuvaatimuksen tekijä",
    "appeal_who": ("Oikaisuvaatimuksen saa tehdä se, johon päätös on kohdistettu tai jonka oikeuteen, "
                   "velvollisuuteen tai etuun päätös välittömästi vaikuttaa (asianosainen)."),
    "appeal_time_heading": "Oikaisuvaatimusaika",
    "appeal_time": ("Oikaisuvaatimus on tehtävä 30 päivän kuluessa päätöksen tiedoksisaannista. "
                    "Tiedoksisaantipäivää ei lueta määräaikaan. Jos määräajan viimeinen päivä on pyhäpäivä, "
                    "itsenäisyyspäivä, vapunpäivä, joulu- tai juhannusaatto tai arkilauantai, saa "
                    "oikaisuvaatimuksen tehdä ensimmäisenä arkipäivänä sen jälkeen. Kirjeellä lähetetyn "
                    "päätöksen katsotaan tulleen tiedoksi seitsemäntenä päivänä kirjeen lähettämisestä."),
    "appeal_deadline": ("Kun päätös lähetetään {sent_on}, oikaisuvaatimuksen on oltava perillä viimeistään "
                        "{deadline} ennen virka-ajan päättymistä."),
    "appeal_body_heading": "Oikaisuvaatimusviranomainen",
    "appeal_body_default": "Järjestäjän ({organiser}) yksilöasioista päättävä toimielin.",
    "appeal_where": "Oikaisuvaatimus toimitetaan osoitteeseen: {address}",
    "appeal_where_default": "Oikaisuvaatimus toimitetaan järjestäjän ({organiser}) kirjaamoon.",
    "appeal_content_heading": "Oikaisuvaatimuksen sisältö",
    "appeal_content_intro": "Oikaisuvaatimuksessa on ilmoitettava",
    "appeal_content": [
        "päätös, johon oikaisua vaaditaan (päätöksen päivämäärä ja numero),",
        "miten päätöstä halutaan oikaistavaksi,",
        "millä perusteella oikaisua vaaditaan,",
        "oikaisuvaatimuksen tekijän nimi ja yhteystiedot (kotikunta, postiosoite ja puhelinnumero).",
    ],
    "appeal_delivery": ("Oikaisuvaatimuksen voi toimittaa postitse, sähköisesti tai henkilökohtaisesti. "
                        "Lähettäjä vastaa siitä, että oikaisuvaatimus on perillä määräajassa. "
                        "Oikaisuvaatimus on maksuton."),
    "appeal_law": ("Hallintolaki (434/2003) 7 a luku ja 59 §; sosiaalihuoltolaki (1301/2014) 48 §; laki "
                   "sosiaalihuollon asiakkaan asemasta ja oikeuksista (812/2000)."),
    "commitment_intro": ("{organiser} sitoutuu maksamaan alla mainitun palvelun henkilökohtaisen budjetin "
                         "asiakkaalle enintään maksusitoumuksen määrään asti."),
    "service_date": "Palvelupäivä",
    "reference": "Viitenumero",
    "reference_rf": "Kansainvälinen viite (RF)",
    "max_amount": "Enimmäismäärä (sis. alv)",
    "issued_on": "Annettu",
    "business_id": "Y-tunnus",
    "client_code_note": ("Asiakas yksilöidään vain asiakaskoodilla. Asiakkaan henkilötietoja ei tarvita "
                         "laskutukseen eikä niitä saa liittää laskuun."),
    "invoicing_heading": "Laskutusohje",
    "invoicing_einvoice": "Lähettäkää lasku verkkolaskuna (Finvoice) osoitteeseen {address}{operator}.",
    "invoicing_operator": ", välittäjä {operator}",
    "invoicing_no_address": ("Lähettäkää lasku verkkolaskuna (Finvoice) järjestäjän ({organiser}) "
                             "verkkolaskuosoitteeseen."),
    "invoicing_rules": [
        "Laskun viitenumeroksi merkitään tämän maksusitoumuksen viitenumero {reference}.",
        "Laskulle merkitään asiakaskoodi {client}.",
        "Laskun summa saa olla enintään {amount}; ylittävää osaa ei makseta.",
        "Palvelu laskutetaan sen jälkeen, kun se on annettu, ja viimeistään {until}.",
    ],
    "invoicing_buyer": "Laskun vastaanottaja (ostaja): {buyer}",
    "statement_for": "Henkilökohtaisen budjetin tapahtumat kuukaudelta {period}",
    "statement_summary": "Yhteenveto",
    "statement_rows": {
        "granted": "Kuukauden budjetti",
        "carried_in": "Siirretty edelliseltä kuukaudelta",
        "committed": "Sidottu maksusitoumuksiin",
        "released": "Vapautunut (peruttu tai jäänyt käyttämättä)",
        "invoiced": "Laskutettu",
        "paid": "Maksettu palveluntuottajille",
        "carried_out": "Siirretty seuraavalle kuukaudelle",
        "lapsed": "Rauennut",
        "corrected": "Oikaisut",
    },
    "balance_heading": "Saldo {on_date}",
    "balance_rows": {"credits": "Myönnetty yhteensä", "posted": "Käytetty tai rauennut",
                     "reserved": "Varattu maksusitoumuksiin", "available": "Käytettävissä"},
    "events_heading": "Tapahtumat",
    "event_date": "Päivä",
    "event_what": "Tapahtuma",
    "events_none": "Kuukaudelle ei ole tapahtumia.",
    "labels": {"granted": "budjetti myönnetty", "carried over": "siirto", "committed": "maksusitoumus",
               "spent": "laskutettu", "released": "vapautunut", "lapsed": "rauennut",
               "corrected": "oikaisu"},
    "statement_note": ("Budjettia ei makseta teille; palveluntuottajille maksetaan maksusitoumusten perusteella. "
                       "Kysymyksiin vastaa omatyöntekijänne."),
}

SV = {
    "lang_name": "svenska",
    "decision_title": "Beslut",
    "decision_subject": "Personlig budget (HB)",
    "commitment_title": "Betalningsförbindelse",
    "statement_title": "Månadsutdrag",
    "date": "Datum",
    "decision_number": "Beslutsnummer",
    "commitment_number": "Betalningsförbindelsens nummer",
    "client_code": "Klientkod",
    "pilot": "Försök",
    "page": "Sida",
    "recipient": "Mottagare",
    "decision_heading": "Beslut",
    "decision_text": "Ni beviljas en personlig budget för tiden {valid_from}–{valid_to}.",
    "monthly_amount": "Budget per månad",
    "budget_for": "Budget för månaden {period}",
    "budget_heading": "Budgetens belopp och hur det beräknats",
    "budget_fixed": ("Budgeten är ett fast månadsbelopp: det belopp som antecknats i beslutet eller försökets "
                     "grundbudget, dock högst försökets månadstak."),
    "budget_lines": "Budgeten har beräknats utifrån tjänsterna i er klientplan enligt följande:",
    "validity_heading": "Giltighet",
    "validity_text": "Beslutet gäller {valid_from}–{valid_to}. Budgeten öppnas månadsvis.",
    "services_heading": "Tjänster i klientplanen som budgeten kan användas till",
    "services_plan": "Klientplan, version {version}, gällande från {valid_from}.",
    "services_none": "Till beslutet hör inga tjänster i klientplanen.",
    "carer_days_off": "Närståendevårdarens lediga dagar",
    "service": "Tjänst",
    "quantity": "Mängd per månad",
    "units": {"hour": "timmar", "visit": "besök", "day": "dagar", "item": "st.", "euro": "euro"},
    "payment_heading": "Hur budgeten betalas",
    "payment_text": ("Budgeten betalas inte ut till er som pengar. När ert köpförslag godkänns ger {organiser} "
                     "en betalningsförbindelse till en godkänd serviceproducent. Serviceproducenten fakturerar "
                     "anordnaren direkt, och anordnaren betalar fakturan ur er budget högst till "
                     "betalningsförbindelsens belopp."),
    "commitments_list": "Betalningsförbindelser som getts under beslutets giltighetstid:",
    "commitments_none": "Inga betalningsförbindelser har ännu getts.",
    "provider": "Serviceproducent",
    "amount": "Belopp",
    "valid_until": "Giltig till",
    "status": "Status",
    "statuses": {"pending": "giltig", "posted": "fakturerad", "voided": "annullerad", "expired": "förfallen"},
    "reasons_heading": "Motivering",
    "reasons_client": ("Ni är klient i försöket med personlig budget. Ert servicebehov har bedömts och en "
                       "klientplan har utarbetats för er; budgeten beviljas för tjänsterna i den."),
    "reasons_amount": "Budgetens belopp grundar sig på beräkningen ovan ({rule}).",
    "reasons_fixed": "Budgetens belopp är det fasta månadsbelopp som nämns ovan, enligt försökets regler.",
    "reasons_law": ("Tillämpade rättsregler: socialvårdslagen (1301/2014), lagen om klientens ställning och "
                    "rättigheter inom socialvården (812/2000), förvaltningslagen (434/2003) 44–45 §."),
    "decided_by": "Beslutsfattare",
    "more_info": "Närmare upplysningar om beslutet ges av",
    "personal_worker": "egen kontaktperson",
    "roles": {"worker": "egen kontaktperson", "supervisor": "förman", "admin": "huvudanvändare",
              "finance": "ekonomi", "evaluator": "utvärderare", "assistant": "HB-assistent", "client": "klient"},
    "notice_heading": "Delgivning",
    "notice_text": ("Beslutet sänds per brev {sent_on}. Ni anses ha fått del av beslutet den sjunde dagen "
                    "efter att det sändes, det vill säga {notified_on}, om inte något annat visas."),
    "appeal_heading": "Anvisning om begäran om omprövning",
    "appeal_for": "Gäller beslut {number}, daterat {date}.",
    "calc": {"carer's days off": "Närståendevårdarens lediga dagar", "monthly cap": "Månadstak",
             "monthly budget": "Budget per månad", "partial month": "Del av månad"},
    "appeal_intro": ("Den som är missnöjd med detta beslut kan begära omprövning av det skriftligen. "
                     "Ändring i beslutet får inte sökas genom besvär hos domstol."),
    "appeal_who_heading": "Vem får begära omprövning",
    "appeal_who": ("Omprövning får begäras av den som beslutet avser eller vars rätt, skyldighet eller "
                   "fördel direkt påverkas av beslutet (part)."),
    "appeal_time_heading": "Tidsfrist för begäran om omprövning",
    "appeal_time": ("Begäran om omprövning ska framställas inom 30 dagar från delfåendet av beslutet. "
                    "Delfåendedagen räknas inte in i tidsfristen. Om den sista dagen av tidsfristen infaller på "
                    "en helgdag, självständighetsdagen, första maj, julafton, midsommarafton eller en helgfri "
                    "lördag, får begäran om omprövning framställas den första vardagen därefter. Ett beslut som "
                    "sänts per brev anses ha delgetts den sjunde dagen efter att brevet sändes."),
    "appeal_deadline": ("När beslutet sänds {sent_on} ska begäran om omprövning ha kommit fram senast "
                        "{deadline} före tjänstetidens slut."),
    "appeal_body_heading": "Omprövningsmyndighet",
    "appeal_body_default": "Det organ hos anordnaren ({organiser}) som beslutar i individärenden.",
    "appeal_where": "Begäran om omprövning lämnas in till adressen: {address}",
    "appeal_where_default": "Begäran om omprövning lämnas in till anordnarens ({organiser}) registratorskontor.",
    "appeal_content_heading": "Innehållet i begäran om omprövning",
    "appeal_content_intro": "I begäran om omprövning ska anges",
    "appeal_content": [
        "det beslut som omprövningen gäller (beslutets datum och nummer),",
        "hurdan omprövning som begärs,",
        "på vilka grunder omprövning begärs,",
        "namn och kontaktuppgifter för den som begär omprövning (hemkommun, postadress och telefonnummer).",
    ],
    "appeal_delivery": ("Begäran om omprövning kan lämnas in per post, elektroniskt eller personligen. "
                        "Avsändaren ansvarar för att begäran kommer fram inom tidsfristen. "
                        "Begäran om omprövning är avgiftsfri."),
    "appeal_law": ("Förvaltningslagen (434/2003) 7 a kap. och 59 §; socialvårdslagen (1301/2014) 48 §; lagen "
                   "om klientens ställning och rättigheter inom socialvården (812/2000)."),
    "commitment_intro": ("{organiser} förbinder sig att betala nedan nämnda tjänst för en klient med personlig "
                         "budget högst till betalningsförbindelsens belopp."),
    "service_date": "Servicedag",
    "reference": "Referensnummer",
    "reference_rf": "Internationell referens (RF)",
    "max_amount": "Högsta belopp (inkl. moms)",
    "issued_on": "Given",
    "business_id": "FO-nummer",
    "client_code_note": ("Klienten identifieras endast med klientkoden. Klientens personuppgifter behövs inte "
                         "för faktureringen och får inte bifogas fakturan."),
    "invoicing_heading": "Faktureringsanvisning",
    "invoicing_einvoice": "Skicka fakturan som e-faktura (Finvoice) till adressen {address}{operator}.",
    "invoicing_operator": ", förmedlare {operator}",
    "invoicing_no_address": "Skicka fakturan som e-faktura (Finvoice) till anordnarens ({organiser}) e-fakturaadress.",
    "invoicing_rules": [
        "Ange denna betalningsförbindelses referensnummer {reference} som fakturans referens.",
        "Ange klientkoden {client} på fakturan.",
        "Fakturans belopp får vara högst {amount}; det som överstiger betalas inte.",
        "Tjänsten faktureras efter att den getts, senast {until}.",
    ],
    "invoicing_buyer": "Fakturans mottagare (köpare): {buyer}",
    "statement_for": "Händelser i den personliga budgeten för månaden {period}",
    "statement_summary": "Sammandrag",
    "statement_rows": {
        "granted": "Månadens budget",
        "carried_in": "Överfört från föregående månad",
        "committed": "Bundet i betalningsförbindelser",
        "released": "Frigjort (annullerat eller oanvänt)",
        "invoiced": "Fakturerat",
        "paid": "Betalt till serviceproducenter",
        "carried_out": "Överfört till följande månad",
        "lapsed": "Förfallet",
        "corrected": "Rättelser",
    },
    "balance_heading": "Saldo {on_date}",
    "balance_rows": {"credits": "Beviljat sammanlagt", "posted": "Använt eller förfallet",
                     "reserved": "Reserverat för betalningsförbindelser", "available": "Tillgängligt"},
    "events_heading": "Händelser",
    "event_date": "Dag",
    "event_what": "Händelse",
    "events_none": "Inga händelser under månaden.",
    "labels": {"granted": "budget beviljad", "carried over": "överföring", "committed": "betalningsförbindelse",
               "spent": "fakturerat", "released": "frigjort", "lapsed": "förfallet", "corrected": "rättelse"},
    "statement_note": ("Budgeten betalas inte ut till er; serviceproducenterna får betalt på basis av "
                       "betalningsförbindelserna. Er egen kontaktperson svarar på frågor."),
}

EN = {
    "lang_name": "English",
    "decision_title": "Decision",
    "decision_subject": "Personal budget (HB)",
    "commitment_title": "Payment commitment",
    "statement_title": "Monthly statement",
    "date": "Date",
    "decision_number": "Decision number",
    "commitment_number": "Commitment number",
    "client_code": "Client code",
    "pilot": "Pilot",
    "page": "Page",
    "recipient": "To",
    "decision_heading": "Decision",
    "decision_text": "You are granted a personal budget for {valid_from}–{valid_to}.",
    "monthly_amount": "Budget per month",
    "budget_for": "Budget for {period}",
    "budget_heading": "The budget and how it was calculated",
    "budget_fixed": ("The budget is a fixed monthly amount: the amount written on the decision or the pilot's "
                     "default budget, at most the pilot's monthly cap."),
    "budget_lines": "The budget was calculated from the services of your care plan as follows:",
    "validity_heading": "Validity",
    "validity_text": "The decision is valid {valid_from}–{valid_to}. The budget is opened month by month.",
    "services_heading": "Services of the care plan the budget may be used for",
    "services_plan": "Care plan, version {version}, in force from {valid_from}.",
    "services_none": "No services of a care plan belong to this decision.",
    "carer_days_off": "Family carer's days off",
    "service": "Service",
    "quantity": "Quantity per month",
    "units": {"hour": "hours", "visit": "visits", "day": "days", "item": "items", "euro": "euros"},
    "payment_heading": "How the budget is paid",
    "payment_text": ("The budget is not paid to you as money. When your purchase proposal is approved, "
                     "{organiser} gives an approved service provider a payment commitment. The provider invoices "
                     "the organiser directly, and the organiser pays the invoice from your budget up to the "
                     "amount of the commitment."),
    "commitments_list": "Payment commitments given while this decision is valid:",
    "commitments_none": "No payment commitments have been given yet.",
    "provider": "Service provider",
    "amount": "Amount",
    "valid_until": "Valid until",
    "status": "Status",
    "statuses": {"pending": "valid", "posted": "invoiced", "voided": "cancelled", "expired": "expired"},
    "reasons_heading": "Reasons",
    "reasons_client": ("You are a client of the personal budgeting pilot. Your need for services has been "
                       "assessed and a care plan has been made with you; the budget is granted for its services."),
    "reasons_amount": "The amount of the budget is based on the calculation above ({rule}).",
    "reasons_fixed": "The budget is the fixed monthly amount above, under the pilot's rules.",
    "reasons_law": ("Legal basis: Social Welfare Act (1301/2014), Act on the Status and Rights of Social Welfare "
                    "Clients (812/2000), Administrative Procedure Act (434/2003) sections 44–45."),
    "decided_by": "Decided by",
    "more_info": "Further information on the decision",
    "personal_worker": "personal worker",
    "roles": {"worker": "personal worker", "supervisor": "supervisor", "admin": "administrator",
              "finance": "finance", "evaluator": "evaluator", "assistant": "HB assistant", "client": "client"},
    "notice_heading": "Notification",
    "notice_text": ("The decision is sent by post on {sent_on}. Unless shown otherwise, you are deemed to have "
                    "received it on the seventh day after it was sent, that is on {notified_on}."),
    "appeal_heading": "Instructions for requesting a review",
    "appeal_for": "Concerns decision {number}, dated {date}.",
    "calc": {"carer's days off": "Family carer's days off", "monthly cap": "Monthly cap",
             "monthly budget": "Budget per month", "partial month": "Part of the month"},
    "appeal_intro": ("If you are not satisfied with this decision, you may request a review of it in writing. "
                     "This decision cannot be appealed directly to a court."),
    "appeal_who_heading": "Who may request a review",
    "appeal_who": ("A review may be requested by the person the decision concerns or whose rights, obligations "
                   "or interests it directly affects (a party)."),
    "appeal_time_heading": "Time limit",
    "appeal_time": ("The request for a review must be made within 30 days of notification of the decision. "
                    "The day of notification is not counted. If the last day falls on a public holiday, "
                    "Independence Day, May Day, Christmas Eve, Midsummer Eve or a Saturday, the request may be "
                    "made on the next working day. A decision sent by post is deemed received on the seventh day "
                    "after it was sent."),
    "appeal_deadline": ("As this decision is sent on {sent_on}, your request must arrive by {deadline}, "
                        "before the end of office hours."),
    "appeal_body_heading": "Where the request is decided",
    "appeal_body_default": "The organiser's ({organiser}) body that decides individual matters.",
    "appeal_where": "Send the request to: {address}",
    "appeal_where_default": "Send the request to the registry office of the organiser ({organiser}).",
    "appeal_content_heading": "What the request must contain",
    "appeal_content_intro": "The request for a review must state",
    "appeal_content": [
        "the decision to be reviewed (its date and number),",
        "how you want the decision to be changed,",
        "the grounds on which you request the review,",
        "your name and contact details (municipality of residence, postal address and telephone number).",
    ],
    "appeal_delivery": ("You may send the request by post, electronically or deliver it in person. The sender is "
                        "responsible for it arriving in time. Requesting a review is free of charge."),
    "appeal_law": ("Administrative Procedure Act (434/2003) chapter 7 a and section 59; Social Welfare Act "
                   "(1301/2014) section 48; Act on the Status and Rights of Social Welfare Clients (812/2000)."),
    "commitment_intro": ("{organiser} commits to pay for the service below, bought by a personal budget client, "
                         "up to the amount of this commitment."),
    "service_date": "Date of service",
    "reference": "Reference number",
    "reference_rf": "International reference (RF)",
    "max_amount": "Maximum amount (VAT included)",
    "issued_on": "Issued",
    "business_id": "Business ID",
    "client_code_note": ("The client is identified by the client code only. The client's personal data is not "
                         "needed for invoicing and must not be attached to the invoice."),
    "invoicing_heading": "How to invoice",
    "invoicing_einvoice": "Send the invoice as an e-invoice (Finvoice) to the address {address}{operator}.",
    "invoicing_operator": ", operator {operator}",
    "invoicing_no_address": "Send the invoice as an e-invoice (Finvoice) to the e-invoice address of {organiser}.",
    "invoicing_rules": [
        "Quote this commitment's reference number {reference} as the invoice's reference.",
        "Show the client code {client} on the invoice.",
        "The invoice may be for at most {amount}; anything above it is not paid.",
        "Invoice the service after it has been given, and by {until} at the latest.",
    ],
    "invoicing_buyer": "Invoice to (buyer): {buyer}",
    "statement_for": "Your personal budget in {period}",
    "statement_summary": "Summary",
    "statement_rows": {
        "granted": "The month's budget",
        "carried_in": "Carried over from the month before",
        "committed": "Committed to payment commitments",
        "released": "Released (cancelled or not used)",
        "invoiced": "Invoiced",
        "paid": "Paid to providers",
        "carried_out": "Carried over to the next month",
        "lapsed": "Lapsed",
        "corrected": "Corrections",
    },
    "balance_heading": "Balance on {on_date}",
    "balance_rows": {"credits": "Granted in all", "posted": "Spent or lapsed",
                     "reserved": "Reserved for payment commitments", "available": "Available"},
    "events_heading": "Events",
    "event_date": "Date",
    "event_what": "Event",
    "events_none": "No events in this month.",
    "labels": {"granted": "budget granted", "carried over": "carry-over", "committed": "payment commitment",
               "spent": "invoiced", "released": "released", "lapsed": "lapsed", "corrected": "correction"},
    "statement_note": ("The budget is not paid to you; providers are paid on the basis of payment commitments. "
                       "Your personal worker answers your questions."),
}

PHRASES: dict[str, dict] = {"fi": FI, "sv": SV, "en": EN}
