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
    "last_calls": ("Last calls", "Últimas chamadas"),
    "dial": ("Call", "Ligar"),
    "number": ("Number", "Número"),
    "hangup": ("Hang up", "Desligar"),
    "hold": ("Hold", "Espera"),
    "unhold": ("Resume", "Retomar"),
    "transfer": ("Transfer", "Transferir"),
    "blind": ("Blind", "Direta"),
    "attended": ("Attended", "Consultada"),
    "complete": ("Complete transfer", "Concluir transferência"),
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
}

# The default pause reasons and dispositions (configurable codes: one not listed here is shown as it is).
CODES: dict[str, tuple[str, str]] = {
    "break": ("Break", "Intervalo"),
    "lunch": ("Lunch", "Almoço"),
    "training": ("Training", "Treinamento"),
    "meeting": ("Meeting", "Reunião"),
    "coaching": ("Coaching", "Orientação"),
    "after_call_work": ("After-call work", "Pós-atendimento"),
    "missed_calls": ("Missed calls", "Chamadas perdidas"),
    "resolved": ("Resolved", "Resolvido"),
    "follow_up": ("Follow-up", "Retorno"),
    "sale": ("Sale", "Venda"),
    "no_sale": ("No sale", "Sem venda"),
    "wrong_number": ("Wrong number", "Número errado"),
    "complaint": ("Complaint", "Reclamação"),
}


def catalog(lang: str) -> dict[str, str]:
    """Every label in one language (English for an unknown one)."""
    index = LANGS.index(lang) if lang in LANGS else 0
    return {key: pair[index] for key, pair in WORDS.items()} | {f"code.{key}": pair[index] for key, pair in CODES.items()}
