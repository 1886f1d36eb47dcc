"""The panel's words in English and Brazilian Portuguese, chosen per user.

A dict rather than gettext catalogs: a few dozen short labels, no build step
to compile .mo files, and the same table feeds the browser's script.
"""

from __future__ import annotations

LANGS = ("en", "pt-BR")

WORDS: dict[str, tuple[str, str]] = {
    "title": ("Call center", "Central de atendimento"),
    "login": ("Log in", "Entrar"),
    "logout": ("Log out", "Sair"),
    "username": ("User", "Usuário"),
    "password": ("Password", "Senha"),
    "bad_login": ("Wrong user or password.", "Usuário ou senha incorretos."),
    "too_many": ("Too many attempts; wait a minute.", "Muitas tentativas; aguarde um minuto."),
    "available": ("Available", "Disponível"),
    "pause": ("Pause", "Pausa"),
    "logged_out": ("Logged out", "Deslogado"),
    "ringing": ("Ringing", "Tocando"),
    "on_call": ("On call", "Em atendimento"),
    "wrap_up": ("Wrap-up", "Pós-atendimento"),
    "paused": ("Paused", "Em pausa"),
    "state": ("State", "Estado"),
    "reason": ("Reason", "Motivo"),
    "call": ("Call", "Chamada"),
    "no_call": ("No call", "Sem chamada"),
    "incoming": ("Incoming call", "Chamada recebida"),
    "customer": ("Customer", "Cliente"),
    "unknown_customer": ("Unknown number", "Número desconhecido"),
    "keyed": ("Keyed in the menu", "Digitado na URA"),
    "queue": ("Queue", "Fila"),
    "wait": ("Wait", "Espera"),
    "queue_wait": ("Waited in queue", "Tempo na fila"),
    "talk_time": ("Talk time", "Tempo de conversa"),
    "hold_time": ("On hold", "Em espera"),
    "on_hold": ("on hold", "em espera"),
    "offline": (
        "Connection to the server lost: actions are blocked until it is back.",
        "Conexão com o servidor perdida: as ações ficam bloqueadas até ela voltar.",
    ),
    "leave_queues": ("Leave queues", "Sair das filas"),
    "leave_queues_help": ("Stop taking calls (you stay logged in to the panel)", "Parar de receber chamadas (continua no painel)"),
    "transfer_to": ("Transfer to", "Transferir para"),
    "queues": ("Queues", "Filas"),
    "other_number": ("Another number…", "Outro número…"),
    "calling_phone": ("Calling your phone…", "Chamando seu telefone…"),
    "dialling": ("Dialling", "Discando"),
    "far_busy": ("{number} is busy.", "{number} está ocupado."),
    "far_no_answer": ("{number} did not answer.", "{number} não atendeu."),
    "far_unreachable": ("{number} could not be reached.", "Não foi possível completar a chamada para {number}."),
    "pause_after": ("Pause after this call", "Pausa após esta chamada"),
    "recording_on": ("Recording", "Gravando"),
    "recording_paused": ("Recording paused", "Gravação pausada"),
    "shortcuts": (
        "Keys: Alt+A available · Alt+P pause · Alt+H hang up · Alt+O hold/resume · Alt+T transfer · Alt+D dial · Alt+S save wrap-up",
        "Teclas: Alt+A disponível · Alt+P pausa · Alt+H desligar · Alt+O segurar/retomar · Alt+T transferir · Alt+D ligar · Alt+S salvar tabulação",
    ),
    "last_calls": ("Last calls", "Últimas chamadas"),
    "dial": ("Call", "Ligar"),
    "number": ("Number", "Número"),
    "hangup": ("Hang up", "Desligar"),
    "hold": ("Hold", "Segurar"),
    "unhold": ("Resume", "Retomar"),
    "transfer": ("Transfer", "Transferir"),
    "blind": ("Blind", "Direta"),
    "attended": ("Attended", "Consultada"),
    "complete": ("Complete transfer", "Concluir transferência"),
    "cancel_transfer": ("Cancel transfer", "Cancelar transferência"),
    "agent": ("Agent", "Agente"),
    "disposition": ("Disposition", "Tabulação"),
    "notes": ("Notes", "Observações"),
    "save": ("Save", "Salvar"),
    "saved": ("Saved", "Salvo"),
    "done": ("Done", "Feito"),
    "wallboard": ("Wallboard", "Painel"),
    "waiting": ("Waiting", "Aguardando"),
    "longest": ("Longest wait", "Maior espera"),
    "service_level": ("Service level", "Nível de serviço"),
    "answered": ("Answered", "Atendidas"),
    "abandoned": ("Abandoned", "Abandonadas"),
    "offered": ("Offered", "Recebidas"),
    "callbacks": ("Waiting for a call back", "Aguardando retorno"),
    "agents": ("Agents", "Agentes"),
    "time_in_state": ("Time in state", "Tempo no estado"),
    "listen": ("Listen", "Ouvir"),
    "whisper": ("Whisper", "Sussurrar"),
    "barge": ("Barge", "Conferência"),
    "force_pause": ("Force pause", "Forçar pausa"),
    "force_logout": ("Force logout", "Forçar saída"),
    "per_15_min": ("Today per 15 minutes", "Hoje a cada 15 minutos"),
    "language": ("Language", "Idioma"),
    "refused": ("Refused", "Recusado"),
    "users": ("Users", "Usuários"),
    "role": ("Role", "Perfil"),
    "disable": ("Disable", "Desativar"),
    "recordings": ("Recordings", "Gravações"),
    "duration": ("Duration", "Duração"),
    "paused_spans": ("Paused spans", "Trechos pausados"),
    "download": ("Download", "Baixar"),
    "access_log": ("Recording access log", "Registro de acesso às gravações"),
    "when": ("When", "Quando"),
    "action": ("Action", "Ação"),
    "from_where": ("From", "Origem"),
    "record": ("Record", "Gravar"),
    "pause_recording": ("Pause recording", "Pausar gravação"),
    "resume_recording": ("Resume recording", "Retomar gravação"),
    "enable": ("Enable", "Ativar"),
    "outcome.answered": ("answered", "atendida"),
    "outcome.abandoned": ("abandoned", "abandonada"),
    "outcome.timeout": ("timed out in the queue", "tempo esgotado na fila"),
    "outcome.exit_key": ("asked for a call back", "pediu retorno"),
    "outcome.exit_empty": ("left: no agents", "saiu: sem agentes"),
    "outcome.full": ("queue full", "fila cheia"),
    "outcome.moved": ("moved", "movida"),
    "outcome.left_queue": ("left the queue", "saiu da fila"),
    "outcome.ivr_only": ("menu only", "só na URA"),
    "outcome.outbound": ("outbound", "chamada feita"),
    "outcome.supervision": ("supervision", "supervisão"),
    "outcome.callback": ("call back", "retorno"),
    "outcome.answered_direct": ("answered", "atendida"),
    "outcome.unanswered_direct": ("not answered", "não atendida"),
    "outcome.transferred": ("transferred", "transferida"),
    "role.agent": ("agent", "agente"),
    "role.supervisor": ("supervisor", "supervisor"),
    "role.admin": ("admin", "administrador"),
    # the default pause reasons and dispositions (configured codes not listed here are shown as they are)
    "code.break": ("Break", "Intervalo"),
    "code.lunch": ("Lunch", "Almoço"),
    "code.training": ("Training", "Treinamento"),
    "code.meeting": ("Meeting", "Reunião"),
    "code.coaching": ("Coaching", "Orientação"),
    "code.after_call_work": ("After-call work", "Pós-atendimento"),
    "code.missed_calls": ("Missed calls", "Chamadas perdidas"),
    "code.resolved": ("Resolved", "Resolvido"),
    "code.follow_up": ("Follow-up", "Retorno"),
    "code.sale": ("Sale", "Venda"),
    "code.no_sale": ("No sale", "Sem venda"),
    "code.wrong_number": ("Wrong number", "Número errado"),
    "code.complaint": ("Complaint", "Reclamação"),
}


# What the server answers to a request, by `Refused.key`, with `{name}` filled from its params (a message with no key is
# shown in English as it is).
MESSAGES: dict[str, tuple[str, str]] = {
    "no_call": ("No call in progress.", "Nenhuma chamada em andamento."),
    "not_yours": (
        "That call ({call}) is no longer yours; you are on {current}.",
        "Essa chamada ({call}) não é mais sua; você está em {current}.",
    ),
    "not_your_call": ("Call {call} is not one of your calls.", "A chamada {call} não é uma das suas."),
    "save_first": (
        "Save the wrap-up of your last call first: this queue's after-call work lasts until it is saved.",
        "Salve a tabulação da sua última chamada primeiro: o pós-atendimento desta fila dura até ela ser salva.",
    ),
    "on_a_call": (
        "You are on a call: you will be available when it ends.",
        "Você está em uma chamada: ficará disponível quando ela terminar.",
    ),
    "held_by_consultation": (
        "The caller is already on hold while you consult: complete or cancel the transfer.",
        "O cliente já está em espera durante a consulta: conclua ou cancele a transferência.",
    ),
    "phone_no_answer": ("Your phone ({phone}) did not answer.", "Seu telefone ({phone}) não atendeu."),
    "phone_busy": ("Your phone ({phone}) is busy.", "Seu telefone ({phone}) está ocupado."),
    "phone_unreachable": (
        "Your phone ({phone}) did not take the call: it rejected it or cannot be reached.",
        "Seu telefone ({phone}) não recebeu a chamada: recusou ou não pode ser alcançado.",
    ),
    "calling": ("Your phone answered: calling {number}.", "Seu telefone atendeu: ligando para {number}."),
    "no_transfer": (
        "No transfer: the PBX did not hand the caller over (no consultation in progress?).",
        "Sem transferência: o PABX não passou o cliente adiante (nenhuma consulta em andamento?).",
    ),
    "no_consultation": (
        "No consultation in progress: start an attended transfer first.",
        "Nenhuma consulta em andamento: comece uma transferência consultada primeiro.",
    ),
    "no_consultation_started": (
        "The PBX did not start the consultation with {target}.",
        "O PABX não iniciou a consulta com {target}.",
    ),
    "not_back": ("Cancel: the PBX did not bring you back to the caller.", "Cancelar: o PABX não o trouxe de volta ao cliente."),
    "transfer_failed": ("The transfer failed: {why}.", "A transferência falhou: {why}."),
    "transferred": ("Transferred.", "Transferida."),
    "consulting": (
        "Calling {target}: talk, then Complete transfer, or Cancel.",
        "Chamando {target}: converse e conclua a transferência, ou cancele.",
    ),
    "back_with_caller": ("Transfer cancelled: you are back with the caller.", "Transferência cancelada: você voltou ao cliente."),
    "digits_only": (
        "{field}: digits only (an optional leading +, at most 15 digits).",
        "{field}: apenas dígitos (um + opcional no início, no máximo 15 dígitos).",
    ),
    "no_such_agent": ("Agent {agent}: no such agent.", "Agente {agent}: não existe."),
    "not_your_agent": (
        "Agent {agent} works in none of the queues you supervise.",
        "O agente {agent} não atende nenhuma das filas que você supervisiona.",
    ),
    "no_phone": ("You have no phone to listen on: ask an admin to set one.", "Você não tem telefone para ouvir: peça a um administrador."),
    "leg_unknown": (
        "The agent's side of this call is not known yet: try again in a moment.",
        "O lado do agente desta chamada ainda não é conhecido: tente de novo em instantes.",
    ),
    "not_waiting": ("That caller is no longer waiting in a queue.", "Esse cliente não está mais aguardando em uma fila."),
    "not_your_queue": ("Queue {queue} is not one you supervise.", "A fila {queue} não é uma das que você supervisiona."),
    "recordings_off": ("Recordings are off for this call.", "A gravação está desligada para esta chamada."),
    "already_recording": ("This call is already being recorded.", "Esta chamada já está sendo gravada."),
    "opted_out": ("This caller asked not to be recorded.", "Este cliente pediu para não ser gravado."),
    "recording_refused": ("The recording did not start: {why}", "A gravação não começou: {why}"),
    "not_recording": ("This call is not being recorded.", "Esta chamada não está sendo gravada."),
    "agent_busy": ("Agent {agent} cannot take it now ({state}).", "O agente {agent} não pode atender agora ({state})."),
    "pbx_refused": ("The PBX refused: {why}", "O PABX recusou: {why}"),
    "too_fast": ("Too many requests: slow down.", "Pedidos demais: vá mais devagar."),
    "session_ended": ("Your session has ended: log in again.", "Sua sessão terminou: entre novamente."),
}


def message(lang: str, key: str | None, params: dict[str, str], english: str) -> str:
    """A server message in the user's language (the English text when it has no key or the language is unknown)."""
    pair = MESSAGES.get(key or "")
    if pair is None:
        return english
    text = pair[LANGS.index(lang)] if lang in LANGS else pair[0]
    if "state" in params:
        params = {**params, "state": catalog(lang).get(params["state"], params["state"]).lower()}
    try:
        return text.format(**params)
    except (KeyError, IndexError):
        return english


def catalog(lang: str) -> dict[str, str]:
    """Every label in one language (English for an unknown one)."""
    index = LANGS.index(lang) if lang in LANGS else 0
    return {key: pair[index] for key, pair in WORDS.items()}
